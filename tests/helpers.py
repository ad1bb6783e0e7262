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
