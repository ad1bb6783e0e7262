"""The ``format`` source: the completion follows a template such as
``<think>…</think><answer>…</answer>``, matched in linear time.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import RewardSource, Scores
from rewardhub.sources._text import INVISIBLE
from rewardhub.types import Sample

_HOLE = re.compile(r"\{[*+]\}")
_BETWEEN_TAGS = re.compile(r"(?<=>)\s*(?=<)")
_TAG = re.compile(r"</?[A-Za-z_][^<>]*>")


class FormatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(
        None,
        description="the expected shape: literal text with holes, {*} = any text (may be empty), "
        "{+} = text with at least one non-space character; e.g. "
        "'<think>{+}</think>\\n<answer>{+}</answer>'",
    )
    tags: list[str] | None = Field(
        None,
        description="shorthand: tag names in order, ['think', 'answer'] = "
        "'<think>{+}</think>\\n<answer>{+}</answer>'",
    )
    mode: Literal["strict", "partial"] = Field(
        "strict",
        description="strict: 1 when the whole completion fits the template, else 0; partial: the "
        "fraction of the template's literal parts found in order",
    )
    single: bool = Field(
        True,
        description="strict only: each tag of the template (a literal part such as <answer>) "
        "must occur exactly once in the completion",
    )
    objective: str = "format"

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("tags must not be empty")
            for t in v:
                if not re.fullmatch(r"[A-Za-z_][\w.:-]*", t):
                    raise ValueError(f"{t!r} is not a tag name (letters, digits, _ . : -)")
        return v

    @model_validator(mode="after")
    def _one_template(self) -> FormatConfig:
        if (self.template is None) == (self.tags is None):
            raise ValueError("give exactly one of 'template' or 'tags'")
        if self.template is not None and not self.literal_parts():
            raise ValueError("the template has no literal text to look for")
        return self

    def effective_template(self) -> str:
        if self.template is not None:
            return self.template
        return "\n".join(f"<{t}>{{+}}</{t}>" for t in self.tags or [])

    def literal_parts(self) -> list[str]:
        """The template's literal pieces: the text between holes, split between adjacent tags."""
        return [
            part.strip()
            for segment in _HOLE.split(self.effective_template())
            for part in _BETWEEN_TAGS.split(segment)
            if part.strip()
        ]


_VISIBLE = f"[^\\s{INVISIBLE}]"  # what a ``{+}`` hole requires


class _Template:
    """A template matched in linear time (a regex with several ``.*?`` holes backtracks in
    O(n^holes) on a completion that almost fits).

    The template is a first literal, then groups of (holes, literal). Holes in a row merge into
    one that needs as many visible characters as it holds ``{+}``; each literal is then found
    at its leftmost place after enough visible text, which is optimal because the holes are
    otherwise unconstrained; the last literal must end the text (up to whitespace).
    """

    def __init__(self, template: str) -> None:
        literals = _HOLE.split(template)
        holes = _HOLE.findall(template)
        self.first = re.compile(r"\s*" + _literal_regex(literals[0].strip()))
        self.groups: list[tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = []
        need = 0
        for i, hole in enumerate(holes):
            need += hole == "{+}"
            lit = literals[i + 1].strip()
            if not lit and i + 1 < len(holes):
                continue  # adjacent holes: one hole
            last = i + 1 == len(holes)
            visible = re.compile(f"(?:[\\s{INVISIBLE}]*{_VISIBLE}){{{need}}}") if need else None
            tail = r"\s*\Z" if last else ""
            self.groups.append((visible, re.compile(_literal_regex(lit) + tail) if lit else None))
            need = 0
        self.plain = re.compile(r"\s*" + _literal_regex(literals[0].strip()) + r"\s*")

    def fullmatch(self, text: str) -> bool:
        if not self.groups:
            return self.plain.fullmatch(text) is not None
        m = self.first.match(text)
        if m is None:
            return False
        pos = m.end()
        for enough, literal in self.groups:
            if enough is not None:
                v = enough.match(text, pos)
                if v is None:
                    return False
                start = v.end()
            else:
                start = pos
            if literal is None:  # the template ends with holes: the rest is theirs
                return True
            found = literal.search(text, start)
            if found is None:
                return False
            pos = found.end()
        return True


def _count_upto(pattern: re.Pattern[str], text: str, limit: int) -> int:
    n = 0
    for _ in pattern.finditer(text):
        n += 1
        if n >= limit:
            break
    return n


def _literal_regex(text: str) -> str:
    """Literal text where every run of whitespace matches any (possibly empty) whitespace."""
    return r"\s*".join(re.escape(piece) for piece in re.split(r"\s+", text))


class Format(RewardSource):
    """The completion follows a template such as ``<think>…</think><answer>…</answer>``."""

    type = "format"
    inline = True
    Config = FormatConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        parts = self.config.literal_parts()
        self._parts = [re.compile(_literal_regex(p)) for p in parts]
        self._tags = [re.compile(re.escape(p)) for p in parts if _TAG.fullmatch(p)]
        self._template = _Template(self.config.effective_template())

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def _strict(self, text: str) -> float:
        if self.config.single and any(_count_upto(p, text, 2) != 1 for p in self._tags):
            return 0.0
        return 1.0 if self._template.fullmatch(text) else 0.0

    def _partial(self, text: str) -> float:
        found, pos = 0, 0
        for part in self._parts:
            m = part.search(text, pos)
            if m is not None:
                found += 1
                pos = m.end()
        return found / len(self._parts)

    def score(self, samples: list[Sample]) -> Scores:
        fn = self._strict if self.config.mode == "strict" else self._partial
        return [[fn(s.completion)] for s in samples]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Format)
