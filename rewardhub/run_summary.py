"""The summary ``rewardhub score`` prints: per objective, merged chunk by chunk."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from rewardhub.aggregate.attribution import binding_counts
from rewardhub.outcome import KINDS, Tally
from rewardhub.types import ScoreResult

#: a column with no value yet: count, mean, M2, min, max
_EMPTY = (0.0, 0.0, 0.0, math.inf, -math.inf)


class RunSummary:
    """Per-objective count, mean, spread, min and max of a run, merged chunk by chunk (Chan et
    al.'s pairwise update), so a run of any length keeps O(objectives) numbers."""

    def __init__(self) -> None:
        self.objectives: tuple[str, ...] = ()
        self.rows = 0
        self.binding: Counter[str] = Counter()
        self._cols: dict[str, list[float]] = {}  # name → [count, mean, M2, min, max]
        self.kinds = Tally()  # not applicable / failed / unscorable cells per objective

    def add(self, result: ScoreResult) -> None:
        vector = result.vector
        if not self.objectives:
            self.objectives = vector.objectives
        self.rows += vector.n
        self.kinds.add(vector.objectives, np.asarray(vector.outcomes))
        self.binding.update(_binding(result.diagnostics))
        for j, name in enumerate(vector.objectives):
            self._merge(name, vector.values[:, j])
        self._merge("total", np.asarray(result.total, dtype=np.float64))

    def add_records(self, objectives: tuple[str, ...], records: list[dict[str, Any]]) -> None:
        """Like :meth:`add`, from records as ``ScoreResult.to_records`` writes them."""
        if not records:
            return
        if not self.objectives:
            self.objectives = objectives
        self.rows += len(records)
        self.kinds.add_records(objectives, records)
        self.binding.update(_binding({"per_sample": [r.get("explain") for r in records]}))
        for name in objectives:
            self._merge(name, _column([r["rewards"].get(name) for r in records]))
        self._merge("total", _column([r.get("total") for r in records]))

    def merge(self, other: RunSummary) -> None:
        """Fold in the summary of the lines that follow this one's (a chunk scored elsewhere):
        the same numbers as if those lines had been added here, in the same order."""
        if not self.objectives:
            self.objectives = other.objectives
        self.rows += other.rows
        self.kinds.merge(other.kinds)
        self.binding.update(other.binding)
        for name, stats in other._cols.items():
            self._fold(name, *stats)

    def _merge(self, name: str, col: np.ndarray) -> None:
        present = col[~np.isnan(col)]
        if not present.size:
            self._cols.setdefault(name, list(_EMPTY))
            return
        mb = float(present.mean())
        m2b = float(((present - mb) ** 2).sum())
        self._fold(name, float(present.size), mb, m2b, float(present.min()), float(present.max()))

    def _fold(self, name: str, nb: float, mb: float, m2b: float, lo_b: float, hi_b: float) -> None:
        """Chan et al.'s pairwise update of one column's [count, mean, M2, min, max]."""
        na, ma, m2a, lo, hi = self._cols.get(name, _EMPTY)
        n = na + nb
        if not n:
            self._cols.setdefault(name, list(_EMPTY))
            return
        delta = mb - ma
        self._cols[name] = [
            n,
            ma + delta * nb / n,
            m2a + m2b + delta * delta * na * nb / n,
            min(lo, lo_b),
            max(hi, hi_b),
        ]

    def stats(self, name: str) -> tuple[int, float, float, float, float]:
        """(values present, mean, population std, min, max) of one objective or ``total``."""
        n, mean, m2, lo, hi = self._cols.get(name, _EMPTY)
        return int(n), mean, math.sqrt(m2 / n) if n else math.nan, lo, hi

    def table(self) -> Table:
        """Per-objective mean, std, min, max, the rate of each outcome that is not a value (not
        applicable, failed, unscorable; for the total: no number) and how often it was
        binding."""
        table = Table(title="rewards per objective")
        kinds = ("n/a", "failed", "unscorable")
        for col in ("objective", "mean", "std", "min", "max", *kinds, "binding"):
            table.add_column(col, justify="left" if col == "objective" else "right")
        rows = max(self.rows, 1)
        for name in (*self.objectives, "total"):
            n, mean, std, lo, hi = self.stats(name)
            cells = [number(x, lo, hi) for x in (mean, std, lo, hi)] if n else ["-"] * 4
            bind = f"{self.binding[name] / rows:.1%}" if self.binding and name != "total" else ""
            label = "[bold]total[/]" if name == "total" else escape(name)
            if name == "total":
                rates = ["", "", f"{1 - n / rows:.1%}"]
            else:
                rates = [f"{self.kinds.get(kind, name) / rows:.1%}" for kind in KINDS]
            table.add_row(label, *cells, *rates, bind)
        return table


def number(x: float, lo: float, hi: float) -> str:
    """``x`` to 4 significant digits; rounding noise next to the column's scale (a mean of
    -1.586e-16 over values of order 1) shows as 0."""
    scale = max(abs(lo), abs(hi))
    return f"{0.0 if abs(x) <= 1e-12 * scale else x:.4g}"


def _column(values: list[Any]) -> np.ndarray:
    """JSON numbers as float64, null as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _binding(diagnostics: dict[str, Any]) -> Counter[str]:
    per = diagnostics.get("per_sample")
    if per is None:
        return Counter()
    if isinstance(per, list):  # records read back: explanations may be missing or odd
        per = [item for item in per if isinstance(item, dict)]
    return Counter(binding_counts(per))
