"""The ``language`` source: the completion is in the expected language (offline detector
py3langid, extra ``policy``); too little text to identify abstains.
"""

from __future__ import annotations

import copy
import functools
import math
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, RewardSource, Row, Scores
from rewardhub.sources._text import BLANK, blank, strip_invisible
from rewardhub.types import Sample


class LanguageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected: list[str] | str | None = Field(
        None, description="ISO 639-1 code(s) the completion should be in, e.g. 'en' or ['en', 'fr']"
    )
    metadata_field: str = Field(
        "language",
        description="when 'expected' is not set: the sample metadata field holding the code(s)",
    )
    mode: Literal["match", "probability"] = Field(
        "match",
        description="match: 1 when the detected language is expected, else 0; probability: the "
        "detector's probability of the expected language(s)",
    )
    languages: list[str] | None = Field(
        None, description="restrict detection to these codes (default: all 97 the model knows)"
    )
    min_chars: int = Field(
        20, ge=1, description="shorter completions (stripped) abstain: too little text to identify"
    )
    max_chars: int = Field(
        5000, ge=1, description="only the first max_chars characters are examined"
    )
    objective: str = "language"


class Language(RewardSource):
    """The completion is in the expected language (offline detector py3langid, extra: policy)."""

    type = "language"
    inline = True
    Config = LanguageConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._identifier()  # load now: a missing extra or an unknown code fails at construction

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    @cached_property
    def _model(self) -> Any:

        ident = copy.copy(_base_identifier())  # set_languages rebinds, never mutates, arrays
        known = set(ident.labels)
        wanted = [*(self.config.languages or []), *_codes(self.config.expected)]
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise SourceError(
                f"language: unknown language code(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        if self.config.languages:
            ident.set_languages(
                sorted(set(self.config.languages) | set(_codes(self.config.expected)))
            )
        return ident

    def _identifier(self) -> Any:
        try:
            return self._model
        except SourceError:
            raise
        except ImportError:
            raise
        except Exception as exc:
            raise SourceError(f"language: cannot load the detector: {exc}") from exc

    def _row(self, s: Sample) -> Row:
        c = self.config
        expected = _codes(
            c.expected if c.expected is not None else s.metadata.get(c.metadata_field)
        )
        if not expected:
            return Abstain(f"no expected language: set 'expected' or metadata.{c.metadata_field}")
        if blank(s.completion):
            return BLANK
        text = strip_invisible(s.completion[: c.max_chars]).strip()
        if len(text) < c.min_chars:
            return Abstain(
                f"too little text to identify a language ({len(text)} < {c.min_chars} chars)"
            )
        ident = self._model
        if c.mode == "match":
            lang, _ = ident.classify(text)
            return [1.0 if lang in expected else 0.0]
        ranked = dict(ident.rank(text))
        p = sum(float(ranked.get(code, 0.0)) for code in expected)
        return [min(1.0, max(0.0, p)) if math.isfinite(p) else 0.0]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s) for s in samples]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_model", None)  # reloaded lazily in the worker
        return state


@functools.lru_cache(maxsize=1)
def _base_identifier() -> Any:
    """The py3langid model, loaded once per process (about a second)."""
    from rewardhub._optional import require

    langid = require("py3langid.langid", "policy", "the language source")
    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def _codes(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Language)
