"""Functions used by tests through the ``python`` source (``tests.helpers:name``)."""

from __future__ import annotations

import rewardhub as rh


def word_count(sample: rh.Sample) -> float:
    return float(len(sample.completion.split()))


def two_values(sample: rh.Sample, scale: float = 1.0) -> list[float]:
    return [scale * len(sample.completion), scale * len(sample.prompt_text)]


def batched_len(samples: list[rh.Sample]) -> list[list[float]]:
    return [[float(len(s.completion))] for s in samples]


def word_count_or_abstain(sample: rh.Sample) -> rh.Abstain | float:
    """Words in the completion; abstains on a blank one (an ensemble member that abstains)."""
    if not sample.completion.strip():
        return rh.Abstain("nothing to count")
    return float(len(sample.completion.split()))


def matches_reference(sample: rh.Sample) -> float | None:
    """1 when the completion is the reference, 0 when not, abstain without a reference."""
    if sample.reference is None:
        return None
    return float(sample.completion.strip() == str(sample.reference).strip())
