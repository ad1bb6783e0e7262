"""The audit's report: per exploit class and column (the total, then each objective), how
often the best attack out-earns the honest wrong answer and reaches the reference, and by
how much, in units of the column's range."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardhub.types import json_number


@dataclass(frozen=True)
class Stat:
    """One exploit class on one column (``total`` or an objective), over the samples where
    the class had an attack and the baselines were scored.

    Gains are the best attack's value minus the wrong answer's, divided by ``unit`` (the
    column's range): ``mean_gain`` averages them over samples, ``worst_gain`` is the largest.
    """

    column: str
    samples: int
    out_earns: float
    reaches_reference: float
    mean_gain: float
    worst_gain: float
    unit: float

    def to_dict(self) -> dict[str, Any]:
        return {k: json_number(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Example:
    """The attack with the largest gain on the total: what it wrote and what it earned."""

    line: int
    completion: str
    total: float
    wrong_total: float
    reference_total: float
    rewards: dict[str, float | None]
    reasons: dict[str, str]
    gain: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("total", "wrong_total", "reference_total", "gain"):
            out[key] = json_number(out[key])
        return out


@dataclass(frozen=True)
class ClassReport:
    """One exploit class's results; ``total`` decides its risk."""

    name: str
    family: str
    description: str
    source: str
    attacks: int
    unscorable: int
    total: Stat
    objectives: tuple[Stat, ...]
    worst: Example | None = None

    @property
    def risk(self) -> tuple[float, float, float]:
        """Sort key, highest risk first: mean gain, then worst gain, then out-earning rate."""
        t = self.total
        if not t.samples:
            return (-math.inf, -math.inf, -math.inf)
        return (t.mean_gain, t.worst_gain, t.out_earns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "source": self.source,
            "attacks": self.attacks,
            "unscorable": self.unscorable,
            "total": self.total.to_dict(),
            "objectives": [s.to_dict() for s in self.objectives],
            "worst": self.worst.to_dict() if self.worst else None,
        }


@dataclass(frozen=True)
class AuditReport:
    """The whole audit, classes sorted by risk (highest first)."""

    spec: str
    samples: int
    objectives: tuple[str, ...]
    units: dict[str, float]
    classes: tuple[ClassReport, ...]
    counts: dict[str, int] = field(default_factory=dict)
    """completions scored, baselines built rather than given, and source results computed
    and taken from the cache"""

    def failing(self, gain: float) -> list[ClassReport]:
        """The classes whose mean gain on the total exceeds ``gain``."""
        return [c for c in self.classes if c.total.samples and c.total.mean_gain > gain]

    def by_name(self, name: str) -> ClassReport:
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(f"no exploit class {name!r} in the report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "samples": self.samples,
            "objectives": list(self.objectives),
            "units": {k: json_number(v) for k, v in self.units.items()},
            "counts": self.counts,
            "classes": [c.to_dict() for c in self.classes],
        }

    def table(self, gate: float | None = None) -> Any:
        """A rich table, one row per class, highest risk first."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"reward hacks paid by {self.spec} ({self.samples} samples)")
        for col in (
            "class",
            "family",
            "out-earns wrong",
            "reaches ref",
            "mean gain",
            "worst gain",
            "most-paid objective",
            "attacks",
            "unscorable",
        ):
            table.add_column(
                col,
                justify="left" if col in ("class", "family", "most-paid objective") else "right",
            )
        for c in self.classes:
            t = c.total
            if not t.samples:
                table.add_row(
                    Text(c.name),
                    c.family,
                    "-",
                    "-",
                    "-",
                    "-",
                    "not applicable",
                    str(c.attacks),
                    str(c.unscorable),
                )
                continue
            style = (
                "bold red"
                if gate is not None and t.mean_gain > gate
                else ("yellow" if t.mean_gain > 0.05 else "")
            )
            top = max(
                c.objectives, key=lambda s: s.mean_gain if s.samples else -math.inf, default=None
            )
            paid = (
                f"{top.column} (+{top.mean_gain:.2f})"
                if top and top.samples and top.mean_gain > 0
                else "-"
            )
            table.add_row(
                Text(c.name, style=style),
                c.family,
                f"{t.out_earns:.0%}",
                f"{t.reaches_reference:.0%}",
                Text(f"{t.mean_gain:+.3f}", style=style),
                f"{t.worst_gain:+.3f}",
                Text(paid),
                str(c.attacks),
                str(c.unscorable),
            )
        return table
