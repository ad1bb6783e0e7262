"""The outcome model: what happened in one cell, as data.

Every cell of a :class:`~rewardhub.types.RewardBatch` has one of four outcomes (see
docs/specs.md, "Outcomes"). A source states it with a typed result — a value, :class:`Fail`,
:class:`Abstain` or :class:`NotApplicable` — and the engine records it as an :class:`Outcome`
code next to the value. A *reason* is text for people: nothing here (or anywhere) reads an
outcome out of it. This module also owns the record format (``to_records`` /
``from_records``), how a consumer that cannot take NaN turns a cell into a number (fills and
``abstained_*`` flags), and the per-kind counts that summaries and metrics report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

OutcomeArray = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]


class Outcome(IntEnum):
    """What happened in one cell of a reward batch."""

    #: the source scored it
    VALUE = 0
    #: routed away (``when:``, or a source that decides applicability itself): NaN, skipped;
    #: the sample is scored on what applies
    NOT_APPLICABLE = 1
    #: the completion caused the failure: the cell holds the objective's failing value
    FAILED = 2
    #: the machinery failed: NaN, never cached; by default the sample's total is NaN
    UNSCORABLE = 3

    @property
    def label(self) -> str:
        """The name records use: ``value``, ``not applicable``, ``failed``, ``unscorable``."""
        return self.name.lower().replace("_", " ")


#: label → code, for reading records
_BY_LABEL = {o.label: o for o in Outcome}
#: the kinds of cell that are not plain values, in the order summaries print them
KINDS = (Outcome.NOT_APPLICABLE, Outcome.FAILED, Outcome.UNSCORABLE)


# -- what a source returns ------------------------------------------------------------------


@dataclass(frozen=True)
class Abstain:
    """Return this as a row (or raise :class:`AbstainNow`) when the machinery could not score
    the sample (a worker died, a judge did not answer): the cells are NaN, *unscorable*."""

    reason: str


@dataclass(frozen=True)
class Fail:
    """Return this as a row (or raise :class:`FailNow`) when the completion itself failed the
    check: a time-out or crash on its content, an unparsable answer. The cells get the
    objectives' failing values, so a completion never earns more by breaking the check than by
    failing it. The reason is kept."""

    reason: str


@dataclass(frozen=True)
class NotApplicable:
    """Return this as a row when the source decides the sample is not for it (as ``when:``
    does in a spec, e.g. a remote server's routing): the cells are NaN and skipped."""

    reason: str = "not applicable"


class AbstainNow(Exception):
    """Raise inside ``score`` to abstain on the whole batch with a reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class FailNow(Exception):
    """Raise inside ``score`` when the completions of the whole batch failed the check."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


#: the typed results a row may be, and the outcome each one records
VERDICTS: dict[type, Outcome] = {
    Abstain: Outcome.UNSCORABLE,
    Fail: Outcome.FAILED,
    NotApplicable: Outcome.NOT_APPLICABLE,
}


def cell_outcomes(row_codes: npt.NDArray[np.int8], values: FloatArray) -> OutcomeArray:
    """Cell codes (m × k) from one code per row: a row of values may still hold NaN cells,
    which are unscorable (the source gave no number); other rows are their code throughout."""
    codes = np.repeat(np.asarray(row_codes, dtype=np.int8)[:, None], values.shape[1], axis=1)
    codes[(codes == Outcome.VALUE) & np.isnan(values)] = Outcome.UNSCORABLE
    return codes


# -- counts ----------------------------------------------------------------------------------


def counts(outcomes: OutcomeArray) -> dict[str, npt.NDArray[np.int64]]:
    """Per-column counts of each kind that is not a value: ``{label: (k,) counts}``."""
    arr = np.asarray(outcomes)
    return {kind.label: (arr == kind).sum(axis=0) for kind in KINDS}


class Tally:
    """Running per-objective counts of each kind that is not a value (the run summary)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {kind.label: {} for kind in KINDS}

    def add(self, objectives: Sequence[str], outcomes: OutcomeArray) -> None:
        """Count a batch's outcome codes."""
        for label, per_column in counts(outcomes).items():
            mine = self.counts[label]
            for name, n in zip(objectives, per_column.tolist()):
                mine[name] = mine.get(name, 0) + n

    def add_records(self, objectives: Sequence[str], recs: Sequence[Mapping[str, Any]]) -> None:
        """Count records as :func:`records` writes them."""
        self.add(objectives, parse_records(recs, objectives).outcomes)

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (a chunk counted elsewhere)."""
        for label, per_column in other.counts.items():
            mine = self.counts.setdefault(label, {})
            for name, n in per_column.items():
                mine[name] = mine.get(name, 0) + n

    def get(self, kind: Outcome, objective: str) -> int:
        return self.counts[kind.label].get(objective, 0)


# -- the record format ----------------------------------------------------------------------


def json_number(x: float) -> float | None:
    """A float as JSON can carry it: NaN (no value) and ±inf become null."""
    return float(x) if math.isfinite(x) else None


def json_row(names: Sequence[str], row: Iterable[float]) -> dict[str, float | None]:
    """``{objective: value}`` for one row, with :func:`json_number` applied."""
    return {name: json_number(v) for name, v in zip(names, row)}


def parse_label(label: Any, where: str) -> Outcome:
    """The code of an outcome label in a record; ValueError naming ``where`` otherwise."""
    kind = _BY_LABEL.get(label) if isinstance(label, str) else None
    if kind is None:
        raise ValueError(f"{where}: unknown outcome {label!r}; expected one of {sorted(_BY_LABEL)}")
    return kind


def record(
    objectives: Sequence[str],
    values: Sequence[float],
    outcomes: Sequence[int],
    reasons: Mapping[str, str],
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One sample's record: ``{"rewards", "std"?, "reasons"?, "outcomes"?}``. Cells without a
    value are null; ``outcomes`` names the cells that are not values and is left out of a
    record whose cells all are."""
    rec: dict[str, Any] = {"rewards": json_row(objectives, values)}
    if std is not None:
        rec["std"] = json_row(objectives, std)
    if reasons:
        rec["reasons"] = dict(reasons)
    odd = _odd_cells(objectives, outcomes)
    if odd:
        rec["outcomes"] = odd
    return rec


def _odd_cells(objectives: Sequence[str], codes: Iterable[int]) -> dict[str, str]:
    """``{objective: label}`` of the cells that are not plain values (the ``outcomes`` key)."""
    return {o: _LABELS[int(c)] for o, c in zip(objectives, codes) if c}


def json_rows(names: Sequence[str], matrix: FloatArray) -> list[dict[str, float | None]]:
    """:func:`json_row` for every row of a matrix (non-finite cells found in one numpy pass)."""
    rows = matrix.tolist()
    bad = ~np.isfinite(matrix)
    if bad.any():
        for i, j in zip(*np.nonzero(bad)):
            rows[i][j] = None
    return [dict(zip(names, row)) for row in rows]


_LABELS = {int(o): o.label for o in Outcome}


def records(
    objectives: Sequence[str],
    values: FloatArray,
    outcomes: OutcomeArray,
    reasons: Sequence[Mapping[str, str]],
    std: FloatArray | None = None,
) -> list[dict[str, Any]]:
    """:func:`record` for every row of a batch's arrays, built column-wise (a score run writes
    millions of them)."""
    out: list[dict[str, Any]] = [{"rewards": r} for r in json_rows(objectives, values)]
    if std is not None:
        for rec, s in zip(out, json_rows(objectives, std)):
            rec["std"] = s
    for rec, why in zip(out, reasons):
        if why:
            rec["reasons"] = dict(why)
    for i in np.flatnonzero(outcomes.any(axis=1)).tolist():
        out[i]["outcomes"] = _odd_cells(objectives, outcomes[i].tolist())
    return out


@dataclass(frozen=True)
class Parsed:
    """The arrays of a list of records (see :func:`parse_records`)."""

    objectives: tuple[str, ...]
    values: FloatArray
    outcomes: OutcomeArray
    reasons: tuple[dict[str, str], ...]
    std: FloatArray | None


def parse_records(
    recs: Sequence[Mapping[str, Any]], objectives: Sequence[str] | None = None
) -> Parsed:
    """Inverse of :func:`records` (records may carry more keys). A cell's outcome comes from
    the record's ``outcomes`` only: a null reward the record does not name is *unscorable*
    (nothing says it was routed away or failed), never a free pass."""
    if objectives is None:
        seen: dict[str, None] = {}
        for r in recs:
            seen.update(dict.fromkeys(r.get("rewards", {})))
        objectives = tuple(seen)
    objs = tuple(objectives)

    def matrix(key: str) -> FloatArray:
        return np.array(
            [[_num(r.get(key, {}).get(o)) for o in objs] for r in recs], dtype=np.float64
        ).reshape(len(recs), len(objs))

    values = matrix("rewards")
    outcomes = np.zeros(values.shape, dtype=np.int8)
    for i, r in enumerate(recs):
        named = r.get("outcomes") or {}
        if not isinstance(named, Mapping):
            raise ValueError(f"record {i}: 'outcomes' must be an object {{objective: label}}")
        for j, o in enumerate(objs):
            label = named.get(o)
            if label is not None:
                outcomes[i, j] = parse_label(label, f"record {i}: outcomes.{o}")
    outcomes[(outcomes == Outcome.VALUE) & np.isnan(values)] = Outcome.UNSCORABLE
    reasons = tuple(_reasons(r.get("reasons"), i) for i, r in enumerate(recs))
    std = matrix("std") if any("std" in r for r in recs) else None
    return Parsed(objs, values, outcomes, reasons, std)


def _reasons(raw: Any, i: int) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"record {i}: 'reasons' must be an object {{source: text}}")
    return {str(k): str(v) for k, v in raw.items()}


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


# -- consumers that cannot take NaN ---------------------------------------------------------


def filled(value: float, outcome: int, fill: float, not_applicable: float) -> tuple[float, bool]:
    """A cell as a number for a trainer that cannot take NaN, and its ``abstained`` flag.

    Unscorable: ``fill`` (by default the objective's failing value), flag set. Not applicable:
    ``not_applicable``, no flag. Failed: its failing value. A value: itself. A non-finite
    number never gets through: it is treated as unscorable."""
    if outcome == Outcome.NOT_APPLICABLE:
        return not_applicable, False
    if outcome == Outcome.UNSCORABLE or not math.isfinite(value):
        return fill, True
    return value, False
