"""Basic rule sources: ``length`` and ``regex`` (patterns run by the ``regex`` module under a
time limit: a completion that makes a pattern hang fails the check)."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, RewardSource, Row, Scores
from rewardhub.sources._patterns import PatternTimeout, compile_pattern, flag, timed
from rewardhub.sources._text import strip_invisible
from rewardhub.types import Sample

_TOKEN = re.compile(r"\w+|[^\w\s]")


class LengthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: int = Field(200, gt=0, description="the ideal length")
    unit: Literal["chars", "words", "tokens"] = Field(
        "chars", description="tokens: the given tokenizer, else a word-piece regex"
    )
    tolerance: int = Field(0, ge=0, description="no penalty within ± tolerance of target")
    scale: float | None = Field(None, gt=0, description="divisor of the distance (default: target)")
    tokenizer: str | None = Field(
        None, description="local path of a Hugging Face tokenizer for unit=tokens (extra: models)"
    )
    objective: str = "brevity"


class Length(RewardSource):
    """Closeness to a target length: −max(0, |len − target| − tolerance) / scale (≤ 0)."""

    type = "length"
    inline = True
    Config = LengthConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.inline = not self.config.tokenizer  # a tokenizer loads and runs outside the GIL

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    @cached_property
    def _tokenizer(self) -> Any:
        from rewardhub._optional import require

        transformers = require("transformers", "models", "length with a tokenizer")
        return transformers.AutoTokenizer.from_pretrained(
            self.config.tokenizer, local_files_only=True
        )

    def _lengths(self, texts: list[str]) -> list[int]:
        unit = self.config.unit
        if unit == "chars":  # what shows: zero-width padding does not reach a target length
            return [len(strip_invisible(t)) for t in texts]
        if unit == "words":
            return [len(t.split()) for t in texts]
        if self.config.tokenizer:
            return [
                len(ids) for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]
            ]
        return [len(_TOKEN.findall(t)) for t in texts]

    def score(self, samples: list[Sample]) -> Scores:
        c = self.config
        scale = c.scale or float(c.target)
        return [
            [-max(0, abs(n - c.target) - c.tolerance) / scale]
            for n in self._lengths([s.completion for s in samples])
        ]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_tokenizer", None)  # reloaded lazily in the worker
        return state


class RegexPattern(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    objective: str = "format"
    must_match: bool = Field(True, description="false: the pattern must NOT match")
    mode: Literal["search", "fullmatch", "match"] = "search"
    field: Literal["completion", "prompt"] = "completion"
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"]] = []

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        compile_pattern(v)
        return v

    def compiled(self) -> Any:
        """The pattern compiled by ``regex`` (matches run under a time limit)."""
        flags = 0
        for f in self.flags:
            flags |= flag(f)
        return compile_pattern(self.pattern, flags)


class RegexConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patterns: list[RegexPattern] = Field(
        default_factory=list,
        description="each pattern scores its objective 1 when satisfied, else 0; patterns "
        "sharing an objective score the fraction satisfied",
    )
    pattern: str | None = Field(None, description="shorthand for a single pattern")
    objective: str = "format"
    must_match: bool = True

    @model_validator(mode="after")
    def _one_or_more(self) -> RegexConfig:
        if self.pattern is not None:
            self.patterns = [
                RegexPattern(
                    pattern=self.pattern, objective=self.objective, must_match=self.must_match
                ),
                *self.patterns,
            ]
        if not self.patterns:
            raise ValueError("give 'pattern' or a non-empty 'patterns' list")
        return self


class Regex(RewardSource):
    """Pattern rules: 1 when a pattern must (not) match and does (not), per objective."""

    type = "regex"
    inline = True
    Config = RegexConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        objs = self.output_objectives
        self._rules = [
            (
                objs.index(p.objective),
                getattr(p.compiled(), p.mode),
                p.must_match,
                p.field == "prompt",
                p.pattern,
            )
            for p in self.config.patterns
        ]
        self._counts = [sum(1 for p in self.config.patterns if p.objective == o) for o in objs]

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.objective for p in config.patterns))

    def _row(self, s: Sample) -> Row:
        counts = self._counts
        row = [0.0] * len(counts)
        for j, test, must, on_prompt, pattern in self._rules:
            text = s.prompt_text if on_prompt else s.completion
            try:
                if (timed(test, text, pattern) is not None) == must:
                    row[j] += 1.0
            except PatternTimeout as exc:  # a completion that makes it hang never passes
                return Abstain(exc.reason) if on_prompt else exc.row()
        return [v / c for v, c in zip(row, counts)]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s) for s in samples]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Length)
    registry.add(Regex)
