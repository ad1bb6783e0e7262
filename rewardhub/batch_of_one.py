"""Spot a batch-relative method that saw a batch or group of one sample.

A z-score, rank or min-max over one sample, or a group normaliser over a group of one, has
nothing to compare the sample with: its reward becomes a constant (0 for a z-score) whatever
the completion. That is almost never what the caller meant, so the pipeline warns once and
the server says so in its response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rewardhub.aggregate.base import group_ids
from rewardhub.batching import batch_relative
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline


class BatchOfOneWarning(UserWarning):
    """A batch-relative normaliser or aggregator compared a sample only with itself."""


def _per_group(part: str, pipeline: Pipeline) -> bool:
    """Whether the spec part named ``part`` (from :func:`batch_relative`) works per group."""
    for norm in pipeline.normalizers:
        if part == f"normalize method {norm.method!r}":
            return getattr(norm.config, "per", "batch") == "group"
    return getattr(pipeline.aggregator.config, "scope", None) == "group"


def batch_of_one(pipeline: Pipeline, samples: Sequence[Sample]) -> list[str]:
    """What in ``pipeline``'s spec compared a sample of ``samples`` only with itself: one
    line per batch-relative part, empty when every sample had company."""
    parts = batch_relative(pipeline)
    if not parts or not samples:
        return []
    out = []
    smallest_group: int | None = None
    bounded = set(pipeline.objectives) <= set(pipeline._bounds)
    for part in parts:
        if bounded and part == "normalize method 'minmax'":
            continue  # every objective declares its range: minmax maps that, not the batch's
        if not _per_group(part, pipeline):
            if len(samples) == 1:
                out.append(f"{part} saw a batch of one sample")
            continue
        if smallest_group is None:
            smallest_group = int(np.bincount(group_ids(samples)).min())
        if smallest_group == 1:
            out.append(f"{part} saw a group of one sample")
    return out


def advice(lines: Sequence[str]) -> str:
    """The warning text for :func:`batch_of_one`'s lines."""
    return (
        f"{'; '.join(lines)}: it compares samples with each other, so a lone sample gets a "
        "constant (a z-score gives 0) whatever its completion. Score samples together (a "
        "group shares metadata['group'] or its prompt), or use a per-sample spec (drop "
        "`normalize`, or use none, clip or running)"
    )
