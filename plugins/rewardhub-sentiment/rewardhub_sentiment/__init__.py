"""rewardhub-sentiment: VADER sentiment (``vadersentiment``) as the ``sentiment`` objective.

VADER rewards what a policy can fake cheaply: repeating a positive word ("great great
great"), capitals and "!!!" raise the score, and a one-word "Great!" scores high with nothing
said. By default the text is flattened first (runs of a repeated word and of punctuation
collapse to one, '!' becomes '.', capitals are lowered) and a completion shorter than ``min_words`` fails the
check at -1, the worst score an honest completion can get.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import rewardhub as rh

_REPEATED_WORD = re.compile(r"\b(\w+)(?:\W+\1\b)+", re.IGNORECASE)
_PUNCT_RUN = re.compile(r"([?.])\1+")


class SentimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flatten: bool = Field(
        True, description="collapse repeated words and punctuation runs, lower capitals"
    )
    min_words: int = Field(
        3, ge=0, description="fewer words fail the check (-1): a one-word 'Great!' says nothing"
    )


def flatten(text: str) -> str:
    """The text without the emphasis VADER counts: repeated words, '!!!', capitals."""
    text = _REPEATED_WORD.sub(r"\1", text).replace("!", ".")  # VADER counts every '!'
    return _PUNCT_RUN.sub(r"\1", text).lower()


class Sentiment(rh.RewardSource):
    """VADER compound sentiment in [-1, 1] (higher is more positive)."""

    type = "sentiment"
    objectives = ("sentiment",)
    Config = SentimentConfig
    fail_value = -1.0
    inline = True  # pure Python

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._analyzer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_analyzer": None}  # rebuilt lazily after unpickling

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        if self._analyzer is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._analyzer = SentimentIntensityAnalyzer()
        rows: list[Any] = []
        for s in samples:
            text = flatten(s.completion) if self.config.flatten else s.completion
            words = len(set(text.lower().split()))  # distinct words: repetition does not count
            if words < self.config.min_words:
                rows.append(rh.Fail(f"{words} distinct word(s), fewer than min_words"))
                continue
            rows.append([float(self._analyzer.polarity_scores(text)["compound"])])
        return rows


@rh.hookimpl
def register_sources(registry: rh.SourceRegistry) -> None:
    registry.add(Sentiment)
