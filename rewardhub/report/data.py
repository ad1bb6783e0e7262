"""What the report shows of scored samples: the exact per-objective numbers, and the arrays
the charts draw (downsampled where a chart would otherwise carry every sample)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rewardhub.errors import InputError
from rewardhub.types import FloatArray

#: points a scatter plot draws at most (the front is computed on every sample)
MAX_POINTS = 2000
OUTCOMES = ("not applicable", "failed", "unscorable")


@dataclass
class ScoredData:
    """Scored samples as arrays: values (n × k, NaN = no value), totals, outcome counts and
    which objective set each total."""

    objectives: list[str]
    values: FloatArray
    total: FloatArray
    outcomes: dict[str, Counter[str]]
    binding: Counter[str] = field(default_factory=Counter)
    contribution: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], where: str = "") -> ScoredData:
        """From records as ``rewardhub score`` writes them (``rewards``, ``total``,
        ``outcomes``, ``explain``); lines without ``rewards`` (rejected inputs) are skipped."""
        rows: list[Mapping[str, Any]] = []
        seen: dict[str, None] = {}
        for rec in records:
            rewards = rec.get("rewards")
            if isinstance(rewards, Mapping):
                rows.append(rec)
                seen.update(dict.fromkeys(rewards))
        names = list(seen)
        values = np.full((len(rows), len(names)), math.nan)
        total = np.full(len(rows), math.nan)
        outcomes: dict[str, Counter[str]] = {o: Counter() for o in names}
        binding: Counter[str] = Counter()
        contrib = dict.fromkeys(names, 0.0)
        index = {o: j for j, o in enumerate(names)}
        for i, rec in enumerate(rows):
            for o, x in rec["rewards"].items():
                if x is not None:
                    if isinstance(x, bool) or not isinstance(x, (int, float)):
                        raise InputError(f"{where}: sample {i + 1}: rewards.{o} is not a number")
                    values[i, index[o]] = x
            t = rec.get("total")
            if isinstance(t, (int, float)) and not isinstance(t, bool):
                total[i] = t
            for o, label in (rec.get("outcomes") or {}).items():
                if o in outcomes:
                    outcomes[o][str(label)] += 1
            explain = rec.get("explain")
            if isinstance(explain, Mapping):
                if explain.get("binding") is not None:
                    binding[str(explain["binding"])] += 1
                for o, c in (explain.get("contributions") or {}).items():
                    if o in contrib and isinstance(c, (int, float)) and math.isfinite(c):
                        contrib[o] += abs(float(c))
        return cls(names, values, total, outcomes, binding, {k: v for k, v in contrib.items() if v})

    @classmethod
    def read(cls, path: Path) -> ScoredData:
        """From a ``rewardhub score`` output file."""
        from rewardhub._jsonl import read_objects

        data = cls.from_records((obj for _, obj in read_objects(path)), str(path))
        if not data.n:
            raise InputError(
                f"{path} has no scored lines (objects with a 'rewards' field); "
                "make one with: rewardhub score SPEC INPUT.jsonl -o SCORED.jsonl"
            )
        return data

    def summary(self) -> list[dict[str, Any]]:
        """Per objective and the total: exact count, mean, std, min, max and outcome rates."""
        out = []
        cols = [
            *((o, self.values[:, j]) for j, o in enumerate(self.objectives)),
            ("total", self.total),
        ]
        for name, col in cols:
            v = col[np.isfinite(col)]
            counts = self.outcomes.get(name, Counter())
            row: dict[str, Any] = {"objective": name, "count": int(v.size)}
            for stat, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
                row[stat] = float(fn(v)) if v.size else None
            for o in OUTCOMES:
                row[o] = counts[o] / self.n if self.n else 0.0
            if name == "total":
                row["unscorable"] = float(np.count_nonzero(~np.isfinite(col))) / max(self.n, 1)
            out.append(row)
        return out

    def spearman(self) -> tuple[list[str], list[list[float | None]]]:
        from rewardhub.evaluate.metrics import spearman_matrix

        names = [*self.objectives, "total"]
        m = spearman_matrix(np.column_stack([self.values, self.total]))
        return names, [[float(x) if math.isfinite(x) else None for x in r] for r in m.tolist()]

    def sample_rows(self, limit: int = MAX_POINTS, seed: int = 0) -> npt.NDArray[np.intp]:
        """Row indices of at most ``limit`` samples, drawn without replacement (seeded)."""
        if self.n <= limit:
            return np.arange(self.n, dtype=np.intp)
        rows = np.random.default_rng(seed).choice(self.n, limit, replace=False)
        return np.sort(rows).astype(np.intp)


def front_2d(x: FloatArray, y: FloatArray) -> FloatArray:
    """The non-dominated points of (x, y), maximising both, sorted by x (m × 2): one sweep
    from the largest x keeps each point above every y seen so far."""
    ok = np.isfinite(x) & np.isfinite(y)
    pts = np.column_stack([x[ok], y[ok]])
    if not len(pts):
        return np.zeros((0, 2))
    order = np.lexsort((-pts[:, 1], -pts[:, 0]))  # x descending, then y descending
    keep: list[Sequence[float]] = []
    best = -math.inf
    for a, b in pts[order]:
        if b > best:
            keep.append((a, b))
            best = b
    return np.array(keep[::-1], dtype=np.float64)


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object ({what})")
    return doc
