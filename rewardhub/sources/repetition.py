"""The ``repetition`` source: a penalty for repeated word n-grams, in [−scale, 0]."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import RewardSource, Row, Scores
from rewardhub.sources._text import BLANK, blank, visible
from rewardhub.types import Sample


class RepetitionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(3, ge=1, le=32, description="n-gram size, in words")
    lowercase: bool = Field(True, description="compare words case-insensitively")
    scale: float = Field(1.0, gt=0, description="the reward is −scale × the repeated fraction")
    objective: str = "repetition"


_WORD = re.compile(r"\w+")


class Repetition(RewardSource):
    """N-gram repetition penalty: −(fraction of word n-grams that repeat an earlier one), in [−1, 0]."""

    type = "repetition"
    inline = True
    Config = RepetitionConfig

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def fail_values(self) -> tuple[float, ...]:
        return (-float(self.config.scale),)  # the worst it gives: every n-gram repeated

    def _value(self, text: str) -> Row:
        if blank(text):  # nothing repeated in nothing: not a free best score
            return BLANK
        c = self.config
        text = visible(text)
        words = _WORD.findall(text.lower() if c.lowercase else text)
        total = len(words) - c.n + 1
        if total <= 1:
            return [0.0]
        repeated = total - len(set(zip(*(words[i:] for i in range(c.n)))))
        return [float(0.0 - c.scale * repeated / total)]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._value(s.completion) for s in samples]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Repetition)
