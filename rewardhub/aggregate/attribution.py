"""Summaries of the per-sample explanations aggregators put in ``diagnostics["per_sample"]``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any


def binding_counts(diagnostics: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How often each objective was the binding one (max-min, Tchebycheff, softmin, gates...).

    Takes a ScoreResult's ``diagnostics`` (or its ``per_sample`` list); samples without a
    binding objective (all abstained, weighted methods) are not counted. Sorted by count.
    """
    per: Any = (
        diagnostics.get("per_sample", ()) if isinstance(diagnostics, Mapping) else diagnostics
    )
    known = per.binding_counts() if hasattr(per, "binding_counts") else None
    if known is not None:  # counted from the aggregator's arrays, no explanation built
        return dict(Counter(known).most_common())
    counts: Counter[str] = Counter()
    for i in range(len(per)):
        name = per[i].get("binding")
        if name is not None:
            counts[str(name)] += 1
    return dict(counts.most_common())
