"""rewardhub-readability: closeness to a target reading grade (``textstat``), and the
``squash`` normalizer that maps any objective into (-1, 1).

Grade formulas reward short sentences of short words, so a policy can game them with a
one-word answer or "a a a a." repeated. A completion with fewer than ``min_words`` words or
whose distinct-word ratio is under ``min_distinct`` fails the check at the worst score.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import rewardhub as rh
from rewardhub.types import FloatArray

#: grade formulas that count characters, not syllables: textstat's English syllable counter
#: downloads NLTK's cmudict at run time, which a reward must never do
METRICS = ("automated_readability_index", "coleman_liau_index")


class ReadabilityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Literal["automated_readability_index", "coleman_liau_index"] = Field(
        "automated_readability_index", description="the textstat grade formula"
    )
    target_grade: float = Field(8.0, ge=0, le=20, description="the school grade to aim for")
    min_words: int = Field(10, ge=1, description="fewer words fail the check")
    min_distinct: float = Field(
        0.3, ge=0, le=1, description="distinct words / words below this fails the check"
    )


class Readability(rh.RewardSource):
    """-|grade - target_grade| / 10, capped at -1 (0 is exactly on target)."""

    type = "readability"
    objectives = ("readability",)
    Config = ReadabilityConfig
    fail_value = -1.0
    inline = True

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        import textstat

        grade = getattr(textstat, self.config.metric)
        rows: list[Any] = []
        for s in samples:
            words = s.completion.lower().split()
            if len(words) < self.config.min_words:
                rows.append(rh.Fail(f"{len(words)} word(s), fewer than min_words"))
            elif len(set(words)) / len(words) < self.config.min_distinct:
                rows.append(rh.Fail("too repetitive to grade"))
            else:
                gap = abs(float(grade(s.completion)) - self.config.target_grade)
                rows.append([max(-1.0, -gap / 10.0)])
        return rows


class SquashConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per: Literal["batch", "group"] = "batch"
    center: float = Field(0.0, description="the value mapped to 0")
    scale: float = Field(1.0, gt=0, description="the distance from center mapped to ±0.76")


class Squash(rh.Normalizer):
    """tanh((x - center) / scale): bounded in (-1, 1), order kept, NaN stays NaN."""

    method = "squash"
    Config = SquashConfig

    def transform(self, values: FloatArray) -> FloatArray:
        return np.tanh((values - self.config.center) / self.config.scale)  # type: ignore[no-any-return]


@rh.hookimpl
def register_sources(registry: rh.SourceRegistry) -> None:
    registry.add(Readability)


@rh.hookimpl
def register_normalizers(registry: rh.NormalizerRegistry) -> None:
    registry.add(Squash)
