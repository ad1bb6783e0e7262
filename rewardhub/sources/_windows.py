"""Long completions read in windows, so that no text past a model's window is free.

A model with a 256-token window reads only the first 256 tokens; anything appended after an
on-topic opening would cost nothing. The model sources therefore split a long completion into
consecutive windows of whole tokens, score each, and reduce: ``min`` (the default, a check: the
worst window decides) or ``mean``. ``overflow: fail`` fails the check instead, and ``truncate``
reads only the first window, counted per sample in ``ScoreResult.diagnostics["truncated"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from rewardhub.errors import SourceError
from rewardhub.types import Sample

Overflow = Literal["window", "fail", "truncate"]


class WindowConfig(BaseModel):
    """The overflow settings the model sources share."""

    overflow: Overflow = Field(
        "window",
        description="a completion longer than the model's window: score it in windows, fail "
        "the check, or cut it (counted in diagnostics['truncated'])",
    )
    window_reduce: Literal["min", "mean"] = Field(
        "min", description="how window scores combine: min (the worst window) or mean"
    )


@runtime_checkable
class Truncates(Protocol):
    """A source that may cut long completions: how many tokens it cuts from each sample."""

    def truncated_tokens(self, samples: Sequence[Sample]) -> list[int]: ...


def spans(tok: Any, text: str, size: int) -> list[tuple[int, int]]:
    """Character spans of ``text`` holding at most ``size`` tokens each (whole tokens, in order,
    covering every token); one span when the text fits."""
    if size < 1:
        raise ValueError(f"a window must hold at least one token, got {size}")
    if not getattr(tok, "is_fast", False):
        raise SourceError("scoring in windows needs a fast (tokenizers-backed) tokenizer")
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= size:
        return [(0, len(text))]
    out: list[tuple[int, int]] = []
    for start in range(0, len(offsets), size):
        chunk = offsets[start : start + size]
        begin = 0 if start == 0 else chunk[0][0]
        end = len(text) if start + size >= len(offsets) else offsets[start + size][0]
        out.append((begin, max(end, chunk[-1][1])))
    return out


def count_tokens(tok: Any, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def reduce(values: Sequence[float], how: str) -> float:
    """The windows' scores as one: their minimum or their mean."""
    return min(values) if how == "min" else sum(values) / len(values)
