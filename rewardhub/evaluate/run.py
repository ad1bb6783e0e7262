"""Evaluate a pipeline on preference pairs: score both sides of every pair, then compute the
accuracies, coverage, relations and calibration (see docs/evaluation.md for each number)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rewardhub.evaluate.metrics import (
    RESAMPLES,
    Calibration,
    accuracy,
    agreement_matrix,
    calibration,
    pair_outcomes,
    spearman_matrix,
    win_probability,
)
from rewardhub.evaluate.pairs import PreferencePair
from rewardhub.evaluate.rewardbench import is_rewardbench, section_scores
from rewardhub.types import FloatArray, RewardBatch, Sample

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline

TOTAL = "total"


@dataclass
class Scored:
    """Both sides of every pair, scored: rows ``i`` of ``chosen``/``rejected`` are pair ``i``."""

    chosen: RewardBatch
    rejected: RewardBatch
    total_chosen: FloatArray
    total_rejected: FloatArray


def score_pairs(
    pipeline: Pipeline,
    pairs: Sequence[PreferencePair],
    *,
    chunk_size: int = 1000,
    on_chunk: Callable[[int], None] | None = None,
) -> Scored:
    """Score the pairs ``chunk_size`` at a time (both sides of a pair in the same batch, so a
    batch-relative normaliser sees them together); ``on_chunk(pairs_done)`` after each."""
    chosen: list[RewardBatch] = []
    rejected: list[RewardBatch] = []
    totals_c: list[FloatArray] = []
    totals_r: list[FloatArray] = []
    for start in range(0, len(pairs), chunk_size):
        chunk = pairs[start : start + chunk_size]
        samples: list[Sample] = [s for p in chunk for s in p.samples()]
        res = pipeline.score(samples)
        m = len(chunk)
        even = np.arange(0, 2 * m, 2)
        chosen.append(res.vector.select(even))
        rejected.append(res.vector.select(even + 1))
        totals_c.append(np.asarray(res.total, dtype=np.float64)[even])
        totals_r.append(np.asarray(res.total, dtype=np.float64)[even + 1])
        if on_chunk is not None:
            on_chunk(start + m)
    return Scored(
        _stack(chosen), _stack(rejected), np.concatenate(totals_c), np.concatenate(totals_r)
    )


def _stack(batches: list[RewardBatch]) -> RewardBatch:
    """Batches of the same objectives one under the other."""
    first = batches[0]
    std = None
    if first.std is not None:
        std = np.concatenate([b.std for b in batches if b.std is not None])
    return RewardBatch(
        np.concatenate([b.values for b in batches]),
        first.objectives,
        std,
        tuple(e for b in batches for e in b.reasons),
        first.sources,
        np.concatenate([b.outcomes for b in batches if b.outcomes is not None]),
    )


@dataclass
class EvalResult:
    """Everything ``rewardhub eval`` reports; :meth:`to_dict` is its ``--json``."""

    pairs: int
    objectives: tuple[str, ...]
    sources: dict[str, list[str]]
    accuracy: dict[str, dict[str, Any]]
    coverage: dict[str, dict[str, float]]
    subsets: dict[str, dict[str, dict[str, Any]]]
    sections: dict[str, dict[str, dict[str, float]]]
    spearman: dict[str, Any]
    agreement: dict[str, Any]
    calibration: dict[str, dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "objectives": list(self.objectives),
            "sources": self.sources,
            "accuracy": self.accuracy,
            "coverage": self.coverage,
            "subsets": self.subsets,
            "sections": self.sections,
            "spearman": self.spearman,
            "agreement": self.agreement,
            "calibration": self.calibration,
            **self.info,
        }


@dataclass(frozen=True)
class _Column:
    """One thing evaluated: an objective, a source (its objectives' mean) or the total."""

    name: str
    chosen: FloatArray
    rejected: FloatArray
    kind: npt.NDArray[np.int8]  # per pair: 0 value, 1 n/a, 2 failed, 3 unscorable
    flip: npt.NDArray[np.bool_]  # labelled "rejected": the rejected side should win
    labelled: npt.NDArray[np.bool_]  # False where labelled "tie" (no preference to check)
    std: tuple[FloatArray, FloatArray] | None = None

    def outcomes(self) -> FloatArray:
        a = np.where(self.flip, self.rejected, self.chosen)
        b = np.where(self.flip, self.chosen, self.rejected)
        return pair_outcomes(a, b)


def evaluate(
    pipeline: Pipeline,
    pairs: Sequence[PreferencePair],
    *,
    chunk_size: int = 1000,
    resamples: int = RESAMPLES,
    seed: int = 0,
    on_chunk: Callable[[int], None] | None = None,
) -> EvalResult:
    """Score ``pairs`` with ``pipeline`` and compute the evaluation."""
    scored = score_pairs(pipeline, pairs, chunk_size=chunk_size, on_chunk=on_chunk)
    return summarize(scored, pairs, resamples=resamples, seed=seed)


def summarize(
    scored: Scored, pairs: Sequence[PreferencePair], *, resamples: int = RESAMPLES, seed: int = 0
) -> EvalResult:
    """The evaluation of already scored pairs."""
    cols = _columns(scored, pairs)
    outcomes = {c.name: c.outcomes() for c in cols}
    acc = {
        c.name: accuracy(outcomes[c.name][c.labelled], resamples=resamples, seed=seed).to_dict()
        for c in cols
    }
    subsets_of = np.array([p.subset for p in pairs], dtype=object)
    names = sorted({p.subset for p in pairs if p.subset})
    subsets: dict[str, dict[str, dict[str, Any]]] = {c.name: {} for c in cols}
    for s in names:
        in_s = subsets_of == s
        for c in cols:
            sel = in_s & c.labelled
            subsets[c.name][s] = accuracy(
                outcomes[c.name][sel], resamples=resamples, seed=seed
            ).to_dict()
    sections: dict[str, dict[str, dict[str, float]]] = {}
    if is_rewardbench(set(names)):
        for c in cols:
            sections[c.name] = {
                which: section_scores(
                    {s: _nan(v[f"accuracy_{which}"]) for s, v in subsets[c.name].items()}
                )
                for which in ("scored", "all")
            }
    objectives = scored.chosen.objectives
    sources = _sources(scored.chosen)
    over = np.concatenate(
        [
            np.column_stack([scored.chosen.values, scored.total_chosen]),
            np.column_stack([scored.rejected.values, scored.total_rejected]),
        ]
    )
    agree_names = [_source_column(s, objs) for s, objs in sources.items()] + [TOTAL]
    if len(sources) == 1:  # one source: how its objectives agree
        agree_names = [*objectives, TOTAL]
    agree = agreement_matrix(np.column_stack([outcomes[n] for n in agree_names]))
    return EvalResult(
        pairs=len(pairs),
        objectives=objectives,
        sources=sources,
        accuracy=acc,
        coverage={c.name: _coverage(c.kind) for c in cols},
        subsets={k: v for k, v in subsets.items() if v},
        sections=sections,
        spearman={"names": [*objectives, TOTAL], "matrix": _matrix(spearman_matrix(over))},
        agreement={"names": agree_names, "matrix": _matrix(agree)},
        calibration={c.name: cal.to_dict() for c in cols if (cal := _calibration(c)).n > 0},
    )


def _columns(scored: Scored, pairs: Sequence[PreferencePair]) -> list[_Column]:
    c, r = scored.chosen, scored.rejected
    assert c.outcomes is not None and r.outcomes is not None
    out: list[_Column] = []
    everywhere = np.ones(len(pairs), dtype=bool)
    for j, name in enumerate(c.objectives):
        labels = [p.labels.get(name, "chosen") for p in pairs]
        std = None
        if c.std is not None and r.std is not None:
            std = (c.std[:, j], r.std[:, j])
        out.append(
            _Column(
                name,
                c.values[:, j],
                r.values[:, j],
                _kind(c.outcomes[:, j], r.outcomes[:, j]),
                np.array([lab == "rejected" for lab in labels]),
                np.array([lab != "tie" for lab in labels]),
                std,
            )
        )
    by_name = {col.name: col for col in out}
    for src, objs in _sources(c).items():
        if len(objs) > 1:  # a one-objective source is its objective's column
            members = [by_name[o] for o in objs]
            same = all(
                np.array_equal(m.flip, members[0].flip)
                and np.array_equal(m.labelled, members[0].labelled)
                for m in members
            )
            out.append(
                _Column(
                    _source_column(src, objs),
                    np.mean([m.chosen for m in members], axis=0),
                    np.mean([m.rejected for m in members], axis=0),
                    np.max([m.kind for m in members], axis=0).astype(np.int8),
                    members[0].flip if same else ~everywhere,
                    members[0].labelled if same else everywhere,
                )
            )
    unscorable = np.isnan(scored.total_chosen) | np.isnan(scored.total_rejected)
    out.append(
        _Column(
            TOTAL,
            scored.total_chosen,
            scored.total_rejected,
            np.where(unscorable, 3, 0).astype(np.int8),
            ~everywhere,
            everywhere,
        )
    )
    return out


def _source_column(source: str, objectives: list[str]) -> str:
    """The column of a source's verdicts: its objective's, or ``source:ID`` (the mean of its
    objectives) when it has several."""
    return f"source:{source}" if len(objectives) > 1 else objectives[0]


def _kind(a: npt.NDArray[np.int8], b: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """A pair's outcome is its worse side's: unscorable (3) > not applicable (1) > failed (2)
    > value (0); a failed side still holds a value, so the pair is compared."""
    rank = np.array([0, 2, 1, 3], dtype=np.int8)  # outcome code → severity
    worse = np.maximum(rank[a], rank[b])
    back = np.array([0, 2, 1, 3], dtype=np.int8)  # severity → outcome code
    return np.asarray(back[worse], dtype=np.int8)


def _sources(batch: RewardBatch) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for src, obj in zip(batch.sources, batch.objectives):
        out.setdefault(src, []).append(obj)
    return out


def _coverage(kind: npt.NDArray[np.int8]) -> dict[str, float]:
    n = max(kind.size, 1)
    return {
        "scored": float(np.count_nonzero((kind == 0) | (kind == 2)) / n),
        "not_applicable": float(np.count_nonzero(kind == 1) / n),
        "failed": float(np.count_nonzero(kind == 2) / n),
        "unscorable": float(np.count_nonzero(kind == 3) / n),
    }


def _calibration(col: _Column) -> Calibration:
    if col.std is None:
        return calibration(np.array([]))
    p = win_probability(col.chosen, col.std[0], col.rejected, col.std[1])
    p = np.where(col.flip, 1 - p, p)[col.labelled]
    ok = np.isfinite(col.std[0]) & np.isfinite(col.std[1])
    return calibration(p[ok[col.labelled]])


def _matrix(m: FloatArray) -> list[list[float | None]]:
    return [[float(x) if math.isfinite(x) else None for x in row] for row in m.tolist()]


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)
