"""What a source returns (:data:`Scores`) and the one check that turns it into rows.

Class sources (checked per batch by the engine) and decorated functions (checked per sample)
go through the same rules: a cell is a number (``bool`` counts; strings, bytes and containers
are never coerced), ``None`` or NaN (no value); ``inf`` is a wrong output that abstains on its
row; a row may be a typed result (:class:`~rewardhub.outcome.Abstain`, ``Fail``,
``NotApplicable``), whose outcome is recorded as a code, never read back from its reason.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from rewardhub.outcome import VERDICTS, Abstain, AbstainNow, Fail, NotApplicable, Outcome

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ScoresWithStd:
    """Scores plus their standard deviations (ensembles, sampled judges)."""

    values: Any
    std: Any


Row: TypeAlias = "Sequence[float | None] | Abstain | Fail | NotApplicable | None"
#: What ``score`` returns: an (n × k) array, a list of n rows (a row is k floats, ``None``,
#: :class:`Abstain`, :class:`Fail` or :class:`NotApplicable`), or :class:`ScoresWithStd`. NaN
#: in a cell abstains on that cell.
Scores: TypeAlias = "FloatArray | Sequence[Row] | ScoresWithStd"

#: what a cell of a score may be: Python and numpy numbers. ``bool`` is a number in Python
#: (True is 1.0), so a check may return one; strings, bytes and containers are never coerced.
NUMBER = (int, float, np.integer, np.floating, np.bool_)

#: the prefix the engine puts before the reason of a failed check (text for people only)
FAILED = "failed: "
#: the reason of a row that is not finite
INFINITE = "wrong output: inf; rewards must be finite (NaN or None abstains)"


@dataclass(frozen=True)
class Broken(Abstain):
    """An abstention the source did not choose: it raised, or returned something that is not
    a row (unscorable like any :class:`Abstain`; the conformance kit reports it as a bug)."""


def wrong_output(value: Any) -> str:
    """The abstain reason for a value that is not a score (never coerced to one)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"wrong output: {type(value).__name__} {text}, expected a number"


def describe(exc: BaseException) -> str:
    """The abstain reason for an exception raised while scoring."""
    if isinstance(exc, AbstainNow):
        return exc.reason
    text = str(exc).strip().splitlines()
    return f"error: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def checked_row(value: Any, k: int) -> Row:
    """What a source gave for one sample, as a row of ``k`` cells or a typed result. A value
    that is not a row is an :class:`Abstain` saying why: nothing is coerced (a string, bytes or
    a dict is a wrong output, not its characters or keys); ``inf`` and ints too large for a
    float abstain."""
    if value is None or isinstance(value, (Abstain, Fail, NotApplicable)):
        return value
    if isinstance(value, NUMBER):
        cells: list[Any] = [value]
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        cells = list(value)
    else:
        return Broken(f"{wrong_output(value)}, a list of {k} numbers, None or rh.Abstain")
    if len(cells) != k:
        return Broken(f"wrong output: {len(cells)} values, expected {k}")
    row: list[float | None] = []
    for c in cells:
        if c is None:
            row.append(None)
            continue
        if not isinstance(c, NUMBER):
            return Broken(wrong_output(c))
        try:
            f = float(c)
        except OverflowError:
            return Broken(f"wrong output: an int of {int(c).bit_length()} bits is too large")
        if math.isinf(f):
            return Broken(INFINITE)
        row.append(f)
    return row


@dataclass(repr=False)  # a repr of 10k rows is never wanted (asyncio formats task results)
class Rows:
    """A checked batch: values (m × k), std, one reason and one :class:`Outcome` code per row.
    A row of values may still hold NaN cells (no value): those cells are unscorable.
    ``broken`` lists the rows that abstained because the output was not a row (see
    :class:`Broken`)."""

    values: FloatArray
    std: FloatArray | None
    reasons: list[str | None]
    codes: npt.NDArray[np.int8]
    broken: list[int] = field(default_factory=list)


def to_rows(out: Any, m: int, k: int, fail: Sequence[float]) -> Rows:
    """Check and convert what ``score`` returned for ``m`` samples. Raises ValueError (or
    TypeError) when the output as a whole is not ``m`` rows; a bad row abstains by itself. A
    :class:`Fail` row holds the failing values ``fail``."""
    std = None
    if isinstance(out, ScoresWithStd):
        std = _coerce_matrix(out.std, m, k, "std")
        out = out.values
    reasons: list[str | None] = [None] * m
    codes = np.zeros(m, dtype=np.int8)
    broken: list[int] = []
    if isinstance(out, np.ndarray):
        values = _coerce_matrix(out, m, k, "an array")
    else:
        try:
            rows = list(out)
        except TypeError:
            raise ValueError(f"returned {type(out).__name__}, expected {m} rows") from None
        if len(rows) != m:
            raise ValueError(f"returned {len(rows)} rows for {m} samples")
        try:  # fast path: every row is k numbers
            values = _rows_to_matrix(rows, m, k)
        except (ValueError, TypeError, OverflowError):
            values = np.full((m, k), math.nan)
            for i, raw in enumerate(rows):
                row = checked_row(raw, k)
                if row is None:
                    codes[i], reasons[i] = Outcome.UNSCORABLE, "abstained"
                elif isinstance(row, (Abstain, Fail, NotApplicable)):
                    codes[i], reasons[i] = _code(row), row.reason
                    if isinstance(row, Broken):
                        broken.append(i)
                    elif isinstance(row, Fail):
                        values[i] = fail
                        reasons[i] = FAILED + row.reason
                else:
                    values[i] = [math.nan if c is None else c for c in row]
    for i in np.flatnonzero(np.isinf(values).any(axis=1)).tolist():
        values[i], codes[i], reasons[i] = math.nan, Outcome.UNSCORABLE, INFINITE
        broken.append(i)
    for i in np.flatnonzero(np.isnan(values).any(axis=1)).tolist():
        if reasons[i] is None:
            reasons[i] = "abstained"
    return Rows(values, std, reasons, codes, sorted(broken))


def _code(row: Abstain | Fail | NotApplicable) -> Outcome:
    return next(code for cls, code in VERDICTS.items() if isinstance(row, cls))


def _numbers_only(types: set[type]) -> bool:
    return all(issubclass(t, NUMBER) for t in types)


def _coerce_matrix(x: Any, m: int, k: int, what: str) -> FloatArray:
    arr = np.asarray(x)
    if arr.dtype.kind == "O":
        if not _numbers_only(set(map(type, arr.ravel().tolist())) - {type(None)}):
            bad = next(
                c for c in arr.ravel().tolist() if c is not None and not isinstance(c, NUMBER)
            )
            raise ValueError(f"{what} holds {wrong_output(bad).removeprefix('wrong output: ')}")
        arr = np.array([math.nan if c is None else c for c in arr.ravel().tolist()]).reshape(
            arr.shape
        )
    elif arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} of dtype {arr.dtype}, expected numbers")
    arr = arr.astype(np.float64, copy=True)
    if arr.ndim == 1 and k == 1 and arr.shape[0] == m:
        arr = arr.reshape(m, 1)
    if arr.shape != (m, k):
        raise ValueError(f"returned {what} of shape {arr.shape}, expected ({m}, {k})")
    return arr


_ROW_TYPES = {list, tuple, np.ndarray}


def _rows_to_matrix(rows: list[Any], m: int, k: int) -> FloatArray:
    """``m`` rows of ``k`` numbers (or, for one objective, ``m`` numbers) as a matrix;
    TypeError/ValueError on anything else (a None, an Abstain, a ragged row, a string that
    numpy would parse). Flattening in C is twice as fast as ``np.asarray`` on nested lists;
    the type checks run in C too (``set(map(type, ...))``)."""
    if k == 1 and m and isinstance(rows[0], (int, float)):  # a flat list, as TRL returns
        if not _numbers_only(set(map(type, rows))):
            raise TypeError("not all numbers")
        return np.fromiter(rows, np.float64, count=m).reshape(m, 1)
    if not set(map(type, rows)) <= _ROW_TYPES:
        raise TypeError("not all rows are lists")
    cells = list(itertools.chain.from_iterable(rows))
    if len(cells) != m * k or not _numbers_only(set(map(type, cells))):
        raise ValueError("ragged rows or cells that are not numbers")
    return np.fromiter(cells, np.float64, count=m * k).reshape(m, k)
