"""What a steering method returns (:class:`SteerResult`), and the prompt checks they share."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardhub.errors import InputError


@dataclass(frozen=True)
class Candidate:
    """One scored candidate: its text, reward vector (objective → value, None = abstained)
    and aggregated total (NaN when the pipeline could not score it)."""

    text: str
    rewards: dict[str, float | None]
    total: float


@dataclass(frozen=True)
class SteerResult:
    """What a steering method chose for one prompt, and how it got there.

    ``abstained`` is True when no candidate had a finite total: the first candidate (a plain
    sample from the base policy) is then returned unchanged. ``info`` holds method specifics:
    the KL bound and estimate for best-of-n, the per-block weights for controlled decoding.
    """

    prompt: str
    text: str
    rewards: dict[str, float | None]
    total: float
    method: str
    candidates: list[Candidate] = field(default_factory=list)
    abstained: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "rewards": self.rewards,
            "total": self.total if math.isfinite(self.total) else None,
            "method": self.method,
            "abstained": self.abstained,
            **self.info,
        }


def checked_prompts(
    prompts: Sequence[str],
    weights: Mapping[str, float] | Sequence[Mapping[str, float] | None] | None,
) -> tuple[list[str], list[Mapping[str, float] | None]]:
    """The prompts (each with some text) and one weight mapping (or None) per prompt."""
    prompts = list(prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise InputError(f"prompts[{i}] is empty: give each prompt some text")
    if weights is None or isinstance(weights, Mapping):
        return prompts, [weights] * len(prompts)
    per = list(weights)
    if len(per) != len(prompts):
        raise InputError(
            f"got {len(per)} weight sets for {len(prompts)} prompts; give one per prompt"
        )
    return prompts, per
