"""Pareto tools: non-dominated sorting, crowding distance, hypervolume, and the ``pareto``
aggregator.

Everything maximises. ``a`` dominates ``b`` iff a ≥ b in every objective and a > b in one;
duplicates share a front. An abstained (NaN) cell counts as worse than any value of its
objective. moocore's C kernels are used when it is installed (lazily imported); the numpy
fallbacks give the same results, only slower on large sets.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from rewardhub.aggregate._checks import check_groups, check_values
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    Context,
    PerSample,
    ScopedConfig,
    group_rows,
)
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray, json_number

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

#: groups up to this size are ranked together in one vectorised pass (the GRPO shape)
BATCHED_GROUP_MAX = 64
#: above this many points (per number of objectives) ``hypervolume`` switches to Monte Carlo
HV_EXACT_LIMIT = {4: 20_000, 5: 2_000, 6: 500}
HV_EXACT_LIMIT_HIGH_D = 200  # 7 objectives and more


def _moocore() -> Any | None:
    try:
        import moocore
    except ImportError:  # pragma: no cover - a core dependency; the numpy fallback stays correct
        return None
    return moocore


def _worst_for_nan(v: FloatArray) -> FloatArray:
    """Replace each column by its dense ranks with NaN → −1 (below every value); order-exact."""
    if not np.isnan(v).any():
        return v
    out = np.empty_like(v)
    for j in range(v.shape[1]):
        col = v[:, j]
        present = ~np.isnan(col)
        ranks = np.full(col.shape[0], -1.0)
        if present.any():
            _, inv = np.unique(col[present], return_inverse=True)
            ranks[present] = inv.reshape(-1)
        out[:, j] = ranks
    return out


# -- non-dominated sorting --------------------------------------------------------------------


def _dominance(p: FloatArray) -> BoolArray:
    """dom[g, a, b]: point a dominates point b in block g (NaN padding dominates nothing)."""
    ge = np.ones((*p.shape[:2], p.shape[1]), dtype=bool)
    gt = np.zeros_like(ge)
    for j in range(p.shape[2]):
        a = p[:, :, j]
        ge &= a[:, :, None] >= a[:, None, :]
        gt |= a[:, :, None] > a[:, None, :]
    ge &= gt
    return ge


def _peel(dom: BoolArray, valid: BoolArray) -> IntArray:
    """Front index per point from a batched dominance tensor, one front per pass."""
    ranks = np.full(valid.shape, -1, dtype=np.intp)
    remaining = valid.copy()
    domf = dom.astype(np.float32)
    r = 0
    while remaining.any():
        # b is dominated by some remaining a ⇔ Σ_a remaining[a] · dom[a, b] > 0
        dominated = np.einsum("ga,gab->gb", remaining.astype(np.float32), domf) > 0
        front = remaining & ~dominated
        ranks[front] = r
        remaining &= ~front
        r += 1
    return ranks


def _nds_padded(v: FloatArray, g: IntArray) -> IntArray:
    """Ranks of all groups at once: pad groups to a (G × s × k) block and peel fronts."""
    n, k = v.shape
    sizes = np.bincount(g)
    n_groups, s = sizes.shape[0], int(sizes.max())
    order = np.argsort(g, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    pos = np.arange(n) - starts[g[order]]
    out = np.empty(n, dtype=np.intp)
    chunk = max(1, (1 << 22) // (s * s))
    for lo in range(0, n_groups, chunk):
        hi = min(n_groups, lo + chunk)
        sel = (g[order] >= lo) & (g[order] < hi)
        rows, gi, pi = order[sel], g[order][sel] - lo, pos[sel]
        block = np.full((hi - lo, s, k), np.nan)
        block[gi, pi] = v[rows]
        valid = np.zeros((hi - lo, s), dtype=bool)
        valid[gi, pi] = True
        out[rows] = _peel(_dominance(block), valid)[gi, pi]
    return out


def _nds_single(v: FloatArray) -> IntArray:
    n, k = v.shape
    if k == 1:
        _, inv = np.unique(-v[:, 0], return_inverse=True)
        ranks: IntArray = inv.reshape(-1).astype(np.intp)
        return ranks
    mc = _moocore()
    if mc is not None:
        return np.asarray(mc.pareto_rank(v, maximise=True), dtype=np.intp)
    if n <= 2048:
        peeled: IntArray = _peel(_dominance(v[None]), np.ones((1, n), dtype=bool))[0]
        return peeled
    return _nds_peel_chunked(v)


def _nds_peel_chunked(v: FloatArray) -> IntArray:
    """Front-by-front peeling with chunked dominance tests (numpy fallback for large n)."""
    n = v.shape[0]
    ranks = np.full(n, -1, dtype=np.intp)
    remaining = np.arange(n)
    r = 0
    while remaining.size:
        pts = v[remaining]
        dominated = np.zeros(remaining.size, dtype=bool)
        step = max(1, (1 << 22) // max(1, remaining.size * v.shape[1]))
        for lo in range(0, remaining.size, step):
            b = pts[lo : lo + step]
            ge = (pts[None, :, :] >= b[:, None, :]).all(axis=2)
            gt = (pts[None, :, :] > b[:, None, :]).any(axis=2)
            dominated[lo : lo + step] = np.any(ge & gt, axis=1)
        ranks[remaining[~dominated]] = r
        remaining = remaining[dominated]
        r += 1
    return ranks


def nondominated_sort(values: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> IntArray:
    """Pareto front index of each row (0 = not dominated), maximising every objective.

    ``groups`` (one label per row) ranks each group separately, all groups in one vectorised
    call. Duplicates share a front; NaN counts as worse than any value of its objective.
    """
    v = check_values(values)
    v = _worst_for_nan(v)
    if groups is None:
        return _nds_single(v)
    g = check_groups(groups, v.shape[0])
    sizes = np.bincount(g)
    if int(sizes.max()) <= BATCHED_GROUP_MAX:
        return _nds_padded(v, g)
    out = np.empty(v.shape[0], dtype=np.intp)
    for rows in group_rows(g):
        out[rows] = _nds_single(v[rows])
    return out


def pareto_front(values: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> BoolArray:
    """True for the rows no other row (of the same group) dominates."""
    front: BoolArray = nondominated_sort(values, groups) == 0
    return front


# -- crowding distance ------------------------------------------------------------------------


def crowding_distance(values: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> FloatArray:
    """NSGA-II crowding distance (Deb et al. 2002) within each set of rows (``groups``).

    Per objective, the gap between a point's two neighbours divided by the set's range,
    averaged over the objectives (pymoo's convention). Boundary points get +inf; sets of
    one or two points are all +inf; an objective constant over the set adds 0. An abstained
    cell adds nothing for its objective.
    """
    v = check_values(values)
    n, k = v.shape
    g = check_groups(groups, n)
    cd = np.zeros(n)
    for j in range(k):
        col = v[:, j]
        idx = np.flatnonzero(~np.isnan(col))
        if idx.size == 0:
            continue
        o = idx[np.lexsort((col[idx], g[idx]))]  # by set, then value (stable for ties)
        gs, cs = g[o], col[o]
        first = np.r_[True, gs[1:] != gs[:-1]]
        last = np.r_[gs[1:] != gs[:-1], True]
        run_start = np.maximum.accumulate(np.where(first, np.arange(o.size), 0))
        run_end = np.minimum.accumulate(np.where(last, np.arange(o.size), o.size)[::-1])[::-1]
        norm = cs[run_end] - cs[run_start]
        prev = np.where(first, -np.inf, np.r_[np.nan, cs[:-1]])
        nxt = np.where(last, np.inf, np.r_[cs[1:], np.nan])
        with np.errstate(invalid="ignore"):
            d = np.where(norm > 0, (nxt - prev) / np.where(norm > 0, norm, 1.0), 0.0)
        cd[o] += d
    cd /= k
    small = np.bincount(g)[g] <= 2
    cd[small] = np.inf
    return cd


# -- hypervolume ------------------------------------------------------------------------------


class HypervolumeEstimate(NamedTuple):
    """A Monte-Carlo hypervolume estimate and its standard error."""

    value: float
    stderr: float
    samples: int


def _hv_input(values: npt.ArrayLike, ref: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    v = check_values(values)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if r.shape[0] != v.shape[1] or not np.isfinite(r).all():
        raise AggregationError(
            f"ref must be {v.shape[1]} finite numbers (one per objective, below every point "
            f"that should count), got {r.tolist()}"
        )
    # only points beating ref in every objective add volume; NaN (abstained) never does
    keep = v[:, 0] > r[0]
    for j in range(1, v.shape[1]):
        keep &= v[:, j] > r[j]
    return (v if keep.all() else v[keep]), r


def _hv2d(v: FloatArray, r: FloatArray) -> float:
    """Exact 2-D hypervolume by one sweep over x, O(n log n)."""
    if v.shape[0] == 0:
        return 0.0
    order = np.lexsort((-v[:, 1], -v[:, 0]))  # x descending
    x, y = v[order, 0], np.maximum.accumulate(v[order, 1])
    widths = x - np.r_[x[1:], r[0]]
    return float(np.dot(widths, y - r[1]))


def _hv_slicing(v: FloatArray, r: FloatArray) -> float:
    """Exact hypervolume by slicing the last objective (HSO, While et al. 2006), numpy 2-D base."""
    if v.shape[0] == 0:
        return 0.0
    if v.shape[1] == 1:
        return float(v[:, 0].max() - r[0])
    if v.shape[1] == 2:
        return _hv2d(v, r)
    order = np.argsort(-v[:, -1], kind="stable")
    v = v[order]
    levels = np.r_[v[:, -1], r[-1]]
    total = 0.0
    for i in range(v.shape[0]):
        depth = levels[i] - levels[i + 1]
        if depth > 0:
            total += depth * _hv_slicing(v[: i + 1, :-1], r[:-1])
    return total


def _exact_limit(k: int) -> int:
    if k <= 3:
        return 2**62
    return HV_EXACT_LIMIT.get(k, HV_EXACT_LIMIT_HIGH_D)


def hypervolume(
    values: npt.ArrayLike,
    ref: npt.ArrayLike,
    *,
    method: Literal["auto", "exact", "mc"] = "auto",
    samples: int = 1_000_000,
    seed: int = 0,
) -> float:
    """Volume of the region dominated by the points and bounded below by ``ref`` (maximising).

    Exact for 1–3 objectives (O(n log n) in 2-D and 3-D) and for 4+ objectives with moocore's
    HV4D+/WFG up to ``HV_EXACT_LIMIT`` points; beyond that ``auto`` returns a Monte-Carlo
    estimate (see :func:`hypervolume_mc` for its standard error). Points that do not beat
    ``ref`` in every objective, and rows with NaN, add nothing.
    """
    v, r = _hv_input(values, ref)
    n, k = v.shape
    if n == 0:
        return 0.0
    if method == "mc" or (method == "auto" and n > _exact_limit(k)):
        return hypervolume_mc(v, r, samples=samples, seed=seed).value
    if k == 1:
        return float(v[:, 0].max() - r[0])
    if k == 2:
        return _hv2d(v, r)
    mc = _moocore()
    if mc is not None:
        return float(mc.hypervolume(v, ref=r, maximise=True))
    return _hv_slicing(v[pareto_front(v)], r)


def hypervolume_mc(
    values: npt.ArrayLike, ref: npt.ArrayLike, *, samples: int = 1_000_000, seed: int = 0
) -> HypervolumeEstimate:
    """Monte-Carlo hypervolume: uniform samples in the box [ref, max]; value ± stderr."""
    v, r = _hv_input(values, ref)
    if v.shape[0] == 0:
        return HypervolumeEstimate(0.0, 0.0, 0)
    if samples < 1:
        raise AggregationError(f"samples must be ≥ 1, got {samples}")
    v = v[pareto_front(v)]
    top = v.max(axis=0)
    box = float(np.prod(top - r))
    rng = np.random.default_rng(seed)
    hits = 0
    step = max(1, (1 << 22) // (v.shape[0] * v.shape[1]))
    done = 0
    while done < samples:
        m = min(step, samples - done)
        u = r + rng.random((m, v.shape[1])) * (top - r)
        hits += int((v[None, :, :] >= u[:, None, :]).all(axis=2).any(axis=1).sum())
        done += m
    p = hits / samples
    return HypervolumeEstimate(box * p, box * math.sqrt(p * (1 - p) / samples), samples)


def hypervolume_contributions(values: npt.ArrayLike, ref: npt.ArrayLike) -> FloatArray:
    """Exclusive hypervolume of each row: HV(all) − HV(all but that row).

    Dominated points, duplicates and points not beating ``ref`` contribute 0; NaN rows are NaN.
    """
    v = check_values(values)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    _hv_input(v, r)  # validates ref
    out = np.zeros(v.shape[0])
    nan_rows = np.isnan(v).any(axis=1)
    out[nan_rows] = np.nan
    keep = np.flatnonzero(~nan_rows & (v > r).all(axis=1))
    if keep.size == 0:
        return out
    pts = v[keep]
    mc = _moocore()
    if mc is not None and v.shape[1] >= 2:
        out[keep] = np.asarray(
            mc.hv_contributions(pts, ref=r, maximise=True, ignore_dominated=False), dtype=np.float64
        )
        return out
    total = hypervolume(pts, r, method="exact")
    for i in range(pts.shape[0]):
        out[keep[i]] = total - hypervolume(np.delete(pts, i, axis=0), r, method="exact")
    return np.maximum(out, 0.0, where=~np.isnan(out), out=out)


# -- the pareto aggregator --------------------------------------------------------------------


def _tiebreak(crowd: FloatArray, sets: IntArray) -> FloatArray:
    """Mid-rank of each point's crowding within its set, in [0, 1] (ties and singletons 0.5)."""
    n = crowd.shape[0]
    key = np.where(np.isinf(crowd), np.finfo(np.float64).max, crowd)
    order = np.lexsort((key, sets))
    ks, ss = key[order], sets[order]
    new_set = np.r_[True, ss[1:] != ss[:-1]]
    new_val = new_set | np.r_[True, ks[1:] != ks[:-1]]
    idx = np.arange(n)
    set_start = np.maximum.accumulate(np.where(new_set, idx, 0))
    val_start = np.maximum.accumulate(np.where(new_val, idx, 0))
    val_end = np.minimum.accumulate(np.where(np.r_[new_val[1:], True], idx, n)[::-1])[::-1]
    size = np.bincount(sets)[ss]
    smaller = val_start - set_start
    ties = val_end - val_start
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(size > 1, (smaller + 0.5 * ties) / (size - 1), 0.5)
    out = np.empty(n)
    out[order] = frac
    return out


def pareto_scores(
    values: npt.ArrayLike, groups: npt.ArrayLike | None = None
) -> tuple[FloatArray, IntArray, FloatArray]:
    """(score in [0, 1], front rank, crowding distance) per row, within each group.

    score = 1 − (rank + (1 − c)/2) / F with F the group's number of fronts and c the row's
    crowding mid-rank within its front (in [0, 1]); every front keeps its own band, so a
    better front always scores higher and less crowded points win ties.
    """
    v = check_values(values)
    g = check_groups(groups, v.shape[0])
    ranks = nondominated_sort(v, g)
    n_fronts = np.zeros(int(g.max()) + 1, dtype=np.intp)
    np.maximum.at(n_fronts, g, ranks + 1)
    sets = g * int(n_fronts.max()) + ranks
    crowd = crowding_distance(v, sets)
    c = _tiebreak(crowd, sets)
    score = 1.0 - (ranks + (1.0 - c) / 2.0) / n_fronts[g]
    return score, ranks, crowd


class Pareto(Aggregator):
    """Front rank within each group with crowding as tie-break, as a reward in [0, 1]."""

    method = "pareto"
    Config = ScopedConfig
    summary = "1 − (front + tie-break)/fronts within each group, in [0, 1]"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        groups = self.config.groups(ctx)
        score, ranks, crowd = pareto_scores(v, groups)
        empty = np.isnan(v).all(axis=1)
        score[empty] = np.nan

        def explain(i: int) -> dict[str, Any]:
            c = float(crowd[i])
            return {
                "front": int(ranks[i]),
                "crowding": json_number(c),
                "boundary": math.isinf(c),
            }

        return Aggregation(
            score, {"method": self.method, "per_sample": PerSample(len(score), explain)}
        )


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Pareto)
