"""The ``keywords`` source: required phrases present, forbidden phrases absent, as a reader
sees the text (invisible characters and compatibility forms do not hide a phrase).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import RewardSource, Row, Scores
from rewardhub.sources._text import BLANK, blank, visible
from rewardhub.types import Sample


class KeywordsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required: list[str] = Field(
        default_factory=list, description="words or phrases that should appear"
    )
    required_mode: Literal["all", "any", "fraction"] = Field(
        "fraction",
        description="all: 1 when every required phrase appears, else 0; any: 1 when at least "
        "one does; fraction: the fraction that appear",
    )
    forbidden: list[str] = Field(
        default_factory=list, description="words or phrases that must not appear"
    )
    forbidden_mode: Literal["any", "fraction"] = Field(
        "any",
        description="any: 0 when any forbidden phrase appears, else 1; fraction: 1 − the fraction "
        "of forbidden phrases that appear",
    )
    case_sensitive: bool = Field(False, description="match case exactly")
    whole_word: bool = Field(
        True, description="a phrase must not be part of a longer word ('cat' does not match 'cats')"
    )
    field: Literal["completion", "prompt"] = Field("completion", description="the text checked")
    required_objective: str = Field(
        "keywords", description="name of the required-phrases objective"
    )
    forbidden_objective: str = Field(
        "no_forbidden", description="name of the forbidden-phrases objective"
    )

    @model_validator(mode="after")
    def _something(self) -> KeywordsConfig:
        if not self.required and not self.forbidden:
            raise ValueError("give a non-empty 'required' or 'forbidden' list")
        if any(not p.strip() for p in [*self.required, *self.forbidden]):
            raise ValueError("keywords must not be empty or blank")
        if self.required and self.forbidden and self.required_objective == self.forbidden_objective:
            raise ValueError("required_objective and forbidden_objective must differ")
        return self


class _Phrase:
    """A phrase matcher: a cheap substring test on its first word, then the regex."""

    def __init__(self, phrase: str, case_sensitive: bool, whole_word: bool) -> None:
        phrase = visible(phrase)
        words = phrase.split() if case_sensitive else phrase.lower().split()
        body = r"\s+".join(re.escape(w) for w in words)
        if whole_word:
            body = rf"(?<!\w){body}(?!\w)"
        self.first = words[0]
        self.regex = re.compile(body)

    def found(self, text: str) -> bool:
        return self.first in text and self.regex.search(text) is not None


class Keywords(RewardSource):
    """Required phrases present (``keywords``) and forbidden phrases absent (``no_forbidden``)."""

    type = "keywords"
    inline = True
    Config = KeywordsConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        self._required = [_Phrase(p, c.case_sensitive, c.whole_word) for p in c.required]
        self._forbidden = [_Phrase(p, c.case_sensitive, c.whole_word) for p in c.forbidden]

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        out = []
        if config.required:
            out.append(config.required_objective)
        if config.forbidden:
            out.append(config.forbidden_objective)
        return tuple(out)

    def _row(self, text: str) -> Row:
        c = self.config
        text = visible(text)  # k\u200bill and ｋｉｌｌ are "kill" to a reader
        if not c.case_sensitive:
            text = text.lower()
        row = []
        if self._required:
            hits = sum(p.found(text) for p in self._required)
            if c.required_mode == "all":
                row.append(float(hits == len(self._required)))
            elif c.required_mode == "any":
                row.append(float(hits > 0))
            else:
                row.append(hits / len(self._required))
        if self._forbidden:
            if c.forbidden_mode == "any":
                row.append(0.0 if any(p.found(text) for p in self._forbidden) else 1.0)
            else:
                bad = sum(p.found(text) for p in self._forbidden)
                row.append(1.0 - bad / len(self._forbidden))
        return row

    def score(self, samples: list[Sample]) -> Scores:
        if self.config.field == "prompt":
            return [self._row(s.prompt_text) for s in samples]
        # a blank completion has no forbidden phrase, and must not earn that
        return [BLANK if blank(s.completion) else self._row(s.completion) for s in samples]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Keywords)
