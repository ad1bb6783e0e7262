"""Run an audit: every exploit class's attacks on every sample, scored by the pipeline in
the same batch as the sample's two baselines, summarised per class and column."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rewardhub.errors import InputError
from rewardhub.pipeline import Pipeline
from rewardhub.redteam.exploit import Attack, Exploit
from rewardhub.redteam.report import AuditReport, ClassReport, Example, Stat
from rewardhub.redteam.target import Target
from rewardhub.types import FloatArray, RewardBatch, Sample, json_row

#: gains smaller than this share of a column's range are ties, not wins
_TIE = 1e-9
_SHOWN_CHARS = 2000


@dataclass
class _Column:
    """Per sample, the best attack's raw gain over the wrong answer and whether it reached
    the reference (NaN / False where the class had no attack or a baseline was missing)."""

    gains: list[float] = field(default_factory=list)
    reached: list[bool] = field(default_factory=list)


@dataclass
class _ClassState:
    exploit: Exploit
    columns: dict[str, _Column]
    attacks: int = 0
    unscorable: int = 0
    worst: tuple[float, Example] | None = None


@dataclass
class _Range:
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: FloatArray) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))

    @property
    def width(self) -> float:
        """The range, 0 when it is float noise."""
        scale = max(1.0, abs(self.low), abs(self.high)) if self.high > self.low else 0.0
        return self.high - self.low if self.high - self.low > _TIE * scale else 0.0


def audit(
    pipeline: Pipeline,
    targets: Sequence[Target],
    exploits: Sequence[Exploit],
    *,
    max_attacks: int = 8,
    chunk_size: int = 16,
    spec_name: str = "",
    on_progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Score each exploit class's attacks (at most ``max_attacks`` per sample and class) on
    ``targets`` with ``pipeline``, beside each target's reference and wrong answers.

    A column's unit is the objective's declared ``bounds`` when the spec gives them, else the
    range of every value the audit saw in it (baselines and attacks).
    """
    if max_attacks < 1:
        raise InputError("max_attacks must be at least 1")
    if not exploits:
        raise InputError("no exploit classes to run")
    columns = ("total", *pipeline.objectives)
    states = [_ClassState(e, {c: _Column() for c in columns}) for e in exploits]
    # per column: the range of the baselines' values, and of every value seen
    ranges = {c: (_Range(), _Range()) for c in columns}
    line = scored = 0
    for start in range(0, len(targets), chunk_size):
        chunk = targets[start : start + chunk_size]
        scored += _score_chunk(pipeline, chunk, states, ranges, max_attacks, line)
        line += len(chunk)
        if on_progress is not None:
            on_progress(len(chunk))
    units = _units(pipeline, ranges)
    stats = pipeline.engine.stats
    counts = {
        "completions": scored,
        "reference_built": sum("honest" in t.built for t in targets),
        "wrong_built": sum("wrong" in t.built for t in targets),
        "source_calls_computed": stats.computed,
        "source_calls_cached": stats.memory_hits + stats.disk_hits,
    }
    classes = sorted((_summarise(s, units) for s in states), key=lambda c: c.risk, reverse=True)
    return AuditReport(
        spec=spec_name,
        samples=len(targets),
        objectives=pipeline.objectives,
        units=units,
        classes=tuple(classes),
        counts=counts,
    )


def _attacks(exploit: Exploit, target: Target, max_attacks: int) -> list[Attack]:
    return list(itertools.islice(exploit.attacks(target), max_attacks))


def _score_chunk(
    pipeline: Pipeline,
    chunk: Sequence[Target],
    states: list[_ClassState],
    ranges: dict[str, tuple[_Range, _Range]],
    max_attacks: int,
    first_line: int,
) -> int:
    """Score one chunk of targets and fold the results in; returns the completions scored."""
    texts: list[str] = []
    owners: list[int] = []  # the target of each text
    layout: list[tuple[int, int, list[tuple[Attack, list[int]]]]] = []
    for t_idx, target in enumerate(chunk):
        base = len(texts)
        texts += [target.honest, target.wrong]
        owners += [t_idx, t_idx]
        for c_idx, state in enumerate(states):
            placed: list[tuple[Attack, list[int]]] = []
            for attack in _attacks(state.exploit, target, max_attacks):
                rows = list(range(len(texts), len(texts) + len(attack.texts)))
                texts += attack.texts
                owners += [t_idx] * len(attack.texts)
                placed.append((attack, rows))
            layout.append((base, c_idx, placed))
    samples = [chunk[o].sample(text) for o, text in zip(owners, texts)]
    vector = pipeline.vector(samples)
    baselines = [row for base, c_idx, _ in layout if c_idx == 0 for row in (base, base + 1)]
    total = _totals(pipeline, vector, samples, baselines)
    table = np.column_stack([total, vector.values])  # n × (1 + k)
    for name, col in zip(ranges, table.T):
        ranges[name][0].add(col[baselines])
        ranges[name][1].add(col)
    for base, c_idx, placed in layout:
        t_idx = owners[base]
        _record(states[c_idx], table, vector, texts, base, placed, first_line + t_idx)
    return len(texts)


def _totals(
    pipeline: Pipeline, vector: RewardBatch, samples: list[Sample], baselines: list[int]
) -> FloatArray:
    """Each completion's total. When the totals depend on the batch (a normaliser such as
    zscore, a ranking aggregator), a batch of attacks would skew them: each attack is then
    totalled in a batch of the chunk's baselines plus itself, one policy sample among honest
    ones, and the baselines among themselves."""
    full = pipeline.aggregate(vector, samples).total
    alone = pipeline.aggregate(vector.select(baselines), [samples[i] for i in baselines]).total
    if np.allclose(full[baselines], alone, rtol=1e-9, atol=1e-12, equal_nan=True):
        return full  # row by row: the batch does not matter
    total = np.empty(vector.n)
    total[baselines] = alone
    for row in sorted(set(range(vector.n)) - set(baselines)):
        rows = [*baselines, row]
        total[row] = pipeline.aggregate(vector.select(rows), [samples[i] for i in rows]).total[-1]
    return total


def _record(
    state: _ClassState,
    table: FloatArray,
    vector: RewardBatch,
    texts: list[str],
    base: int,
    placed: list[tuple[Attack, list[int]]],
    line: int,
) -> None:
    """Fold one sample's attacks of one class into the class's state."""
    reference, wrong = table[base], table[base + 1]
    names = list(state.columns)
    if not placed:
        return
    best = np.full(len(names), -math.inf)
    reached = np.zeros(len(names), dtype=bool)
    seen = np.zeros(len(names), dtype=bool)
    for _, rows in placed:
        state.attacks += 1
        block = table[rows]
        value = block.min(axis=0)  # the worst variant: NaN when any variant is NaN
        if math.isnan(value[0]):
            state.unscorable += 1
        ok = np.isfinite(value) & np.isfinite(wrong)
        seen |= ok
        gain = np.where(ok, value - wrong, -math.inf)
        best = np.maximum(best, gain)
        reached |= ok & np.isfinite(reference) & (value >= reference - _TIE)
        if ok[0] and (state.worst is None or gain[0] > state.worst[0]):
            row = rows[int(np.argmin(block[:, 0]))]
            state.worst = (float(gain[0]), _example(vector, texts, row, line, value, table, base))
    for j, name in enumerate(names):
        col = state.columns[name]
        col.gains.append(float(best[j]) if seen[j] else math.nan)
        col.reached.append(bool(reached[j]))


def _example(
    vector: RewardBatch,
    texts: list[str],
    row: int,
    line: int,
    value: FloatArray,
    table: FloatArray,
    base: int,
) -> Example:
    reasons = {}
    for j, name in enumerate(vector.objectives):
        why = vector.reason(row, j)
        if why:
            reasons[name] = why
    text = texts[row]
    shown = text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}… ({len(text)} chars)"
    return Example(
        line=line + 1,
        completion=shown,
        total=float(value[0]),
        wrong_total=float(table[base + 1, 0]),
        reference_total=float(table[base, 0]),
        rewards=json_row(vector.objectives, value[1:]),
        reasons=reasons,
        gain=float(value[0] - table[base + 1, 0]),
    )


def _units(pipeline: Pipeline, ranges: dict[str, tuple[_Range, _Range]]) -> dict[str, float]:
    """Each column's range: declared bounds, else the spread of the baselines (reference and
    wrong answers over all samples), else of every value seen. The total's range is the
    aggregate of the bounds when every objective declares them and nothing normalises (the
    aggregators are monotone)."""
    units = {name: base.width or seen.width for name, (base, seen) in ranges.items()}
    bounds = {s.name: s.bounds for s in pipeline.spec.objective_specs or [] if s.bounds is not None}
    for name, (low, high) in bounds.items():
        if name in units:
            units[name] = float(high - low)
    normalised = any(n.method != "none" for n in pipeline.normalizers)
    if not normalised and all(o in bounds for o in pipeline.objectives):
        corners = np.array([[bounds[o][i] for o in pipeline.objectives] for i in (0, 1)])
        total = pipeline.aggregate(RewardBatch(corners, pipeline.objectives)).total
        if np.isfinite(total).all() and total[1] > total[0]:
            units["total"] = float(total[1] - total[0])
    return units


def _summarise(state: _ClassState, units: dict[str, float]) -> ClassReport:
    stats = [_stat(name, col, units[name]) for name, col in state.columns.items()]
    worst = None
    if state.worst is not None:
        ex = state.worst[1]
        unit = units["total"]
        worst = Example(**{**ex.__dict__, "gain": ex.gain / unit if unit > 0 else 0.0})
    e = state.exploit
    return ClassReport(
        name=e.name,
        family=e.family,
        description=e.description,
        source=e.source,
        attacks=state.attacks,
        unscorable=state.unscorable,
        total=stats[0],
        objectives=tuple(stats[1:]),
        worst=worst,
    )


def _stat(name: str, col: _Column, unit: float) -> Stat:
    gains = np.array(col.gains, dtype=np.float64)
    present = np.isfinite(gains)
    n = int(present.sum())
    if not n:
        return Stat(name, 0, math.nan, math.nan, math.nan, math.nan, unit)
    raw = gains[present]
    raw = np.where(np.abs(raw) <= _TIE * max(1.0, unit), 0.0, raw)  # float noise is a tie
    scaled = raw / unit if unit > 0 else np.zeros_like(raw)
    reached = np.array(col.reached, dtype=bool)[present]
    return Stat(
        column=name,
        samples=n,
        out_earns=float((scaled > _TIE).mean()),
        reaches_reference=float(reached.mean()),
        mean_gain=float(scaled.mean()),
        worst_gain=float(scaled.max()),
        unit=unit,
    )
