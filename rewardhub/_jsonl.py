"""JSON lines in and out for the command line: strict input, valid UTF-8 output.

Reading never holds more than one line (bounded by ``max_bytes``) and never lets one line stop
a run: a line that is not UTF-8, not standard JSON (``NaN``, ``Infinity``, a float out of
range), nested deeper than ``MAX_DEPTH``, or holding a lone surrogate (``"\\ud83d"``, which no
UTF-8 file can carry) is reported as a :class:`BadLine`, with its number and the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from rewardhub.types import json_number

#: Deepest nesting of arrays and objects a line may have. Deeper lines are rejected before
#: anything recurses over them (the parser, the cache key, the writer).
MAX_DEPTH = 100
#: Default longest line, in bytes; longer lines are rejected without being held in memory.
MAX_LINE_BYTES = 64 << 20

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be scored: ``reason`` says why, ``text`` is the line as read (bytes
    that are not UTF-8 shown as ``\\xNN``; None when the line was too long to keep)."""

    reason: str
    text: str | None


def read_lines(
    fh: IO[bytes], max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None, int]]:
    """(1-based line number, raw line without its newline or None if over ``max_bytes``, bytes
    consumed) for each line of a binary file, holding at most ``max_bytes`` at a time."""
    number = 0
    while True:
        raw = fh.readline(max_bytes + 1)
        if not raw:
            return
        number += 1
        used = len(raw)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):  # more than max_bytes of text
            while raw and not raw.endswith(b"\n"):  # skip the rest in bounded pieces
                raw = fh.readline(1 << 20)
                used += len(raw)
            yield number, None, used
            continue
        yield number, raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw, used


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text[:40]} is out of range for a float")
    return x


def _too_deep(obj: Any) -> bool:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def parse_object(raw: bytes | None, max_bytes: int = MAX_LINE_BYTES) -> dict[str, Any] | BadLine:
    """One input line → its JSON object, or a :class:`BadLine` saying why it is unusable."""
    if raw is None:
        return BadLine(f"line longer than {max_bytes:,} bytes", None)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadLine(
            f"not valid UTF-8 (byte {exc.start + 1}); re-encode the file as UTF-8",
            raw.decode("utf-8", "backslashreplace"),
        )
    try:
        obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        return BadLine(f"invalid JSON: {exc.msg} (column {exc.colno})", text)
    except RecursionError:
        return BadLine(f"nested deeper than {MAX_DEPTH} levels", text)
    except ValueError as exc:  # NaN/Infinity, 1e999, an integer too long to convert
        return BadLine(f"invalid JSON: {exc}", text)
    if not isinstance(obj, dict):
        return BadLine(f"expected a JSON object, got {type(obj).__name__}", text)
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(obj):
        return BadLine(f"nested deeper than {MAX_DEPTH} levels", text)
    if _SURROGATE_ESCAPE.search(text):  # only then can a string hold a lone surrogate
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return BadLine(
                f"a string holds the lone surrogate \\u{ord(exc.object[exc.start]):04x} "
                "(half of a character, e.g. a cut emoji), which is not valid Unicode",
                text,
            )
    return obj


def _default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        v = x.item()
        return json_number(v) if isinstance(v, float) else v
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def encode_line(obj: dict[str, Any]) -> bytes:
    """One output line: standard JSON (non-finite floats are null), UTF-8, newline-terminated.

    Raises ``ValueError`` (or ``UnicodeEncodeError``) for what cannot be written that way.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_default)
    return text.encode("utf-8") + b"\n"


def read_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file; an unreadable file
    or a line that is not a JSON object raises InputError naming the file and line."""
    from rewardhub.errors import InputError

    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    with fh:
        for lineno, raw, _ in read_lines(fh):
            if raw is not None and not raw.strip():
                continue
            obj = parse_object(raw)
            if isinstance(obj, BadLine):
                raise InputError(f"{path}: {obj.reason}", lineno)
            yield lineno, obj
