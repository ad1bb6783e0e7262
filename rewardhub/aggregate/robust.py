"""Robust (worst-case) objective weights, as in Robust Multi-Objective Decoding (RMOD).

Given K candidate reward vectors (K × m), RMOD picks the weights on the simplex that make the
soft-best candidate as bad as possible:

    w* = argmin_{w ∈ Δ_m}  λ · log( (1/K) Σ_k exp(values[k] · w / λ) )

The objective is convex (a log-sum-exp of linear maps). :func:`robust_weights` solves it with
an active-set Newton method on the simplex whose line search is exact (a one-dimensional
Newton on the sign of f' along the step, :mod:`rewardhub.aggregate._robust_small`): where
|values|/λ is large and the soft maximum is nearly hard, a backtracking Newton stalls, while an
exact line search walks to the next kink like a simplex pivot and Newton converges once the
tied candidates are found; small instances (the GRPO shape) run in plain Python floats, where
numpy's per-call cost would dominate, larger ones on numpy vectors. Every answer is checked
against the duality gap; one that is not certified falls back to a backtracking numpy Newton,
the vectorised solver and a log-barrier interior-point solve (polished by Newton on its
face), and an answer whose gap cannot be certified raises. ``solver="cvxpy"`` uses cvxpy as
the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from rewardhub.aggregate import _robust_small as small
from rewardhub.aggregate._checks import check_positive, check_values
from rewardhub.aggregate._robust_batched import solve_groups
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
from rewardhub.types import FloatArray, json_row

IntArray = npt.NDArray[np.intp]
#: below this many groups :func:`robust_weights_batched` solves them one by one (measured:
#: the vectorised solve's fixed numpy cost is worth it from about 8 groups of 8 × 3)
SMALL_BATCH = 8
Solver = Literal["newton", "cvxpy"]


def robust_objective(values: npt.ArrayLike, weights: npt.ArrayLike, lam: float = 1.0) -> float:
    """λ · log mean_k exp(values[k] · w / λ): the quantity :func:`robust_weights` minimises."""
    v = check_values(values)
    s = v @ np.asarray(weights, dtype=np.float64) / lam
    top = float(s.max())
    return lam * (top + math.log(float(np.exp(s - top).mean())))


def _evaluate(v: FloatArray, lam: float, w: FloatArray) -> tuple[float, FloatArray, FloatArray]:
    """f(w) (see :func:`robust_objective`), its gradient ∇f = vᵀp and p = softmax(v·w/λ)."""
    s = v @ w / lam
    top = float(s.max())
    e = np.exp(s - top)
    z = float(e.sum())
    p = e / z
    return lam * (top + math.log(z / v.shape[0])), v.T @ p, p


def _hessian(v: FloatArray, lam: float, p: FloatArray, idx: IntArray) -> FloatArray:
    """∇²f on the coordinates ``idx``: the covariance of v's columns under p, over λ."""
    vc = v[:, idx] - p @ v[:, idx]
    h: FloatArray = (vc.T * p) @ vc / lam
    return h


def _fw_gap(w: FloatArray, g: FloatArray) -> float:
    return max(0.0, float(w @ g - g.min()))


def duality_gap(values: npt.ArrayLike, weights: npt.ArrayLike, lam: float = 1.0) -> float:
    """A certified bound on f(w) − min_Δ f for :func:`robust_weights`' problem.

    It is the Frank–Wolfe gap w·∇f − min_j ∇f_j, which equals the primal–dual gap exactly:
    f(w) = max_{p ∈ Δ_K} pᵀ(v w) − λ·KL(p ‖ uniform), so with p = softmax(v·w/λ) the dual
    value min_j (vᵀp)_j − λ·KL(p ‖ uniform) ≤ min f lies this far below f(w). Zero only at
    the optimum.
    """
    v = check_values(values)
    _, g, _ = _evaluate(v, check_positive(lam, "lam"), np.asarray(weights, dtype=np.float64))
    return _fw_gap(np.asarray(weights, dtype=np.float64), g)


def _newton_simplex(
    v: FloatArray,
    lam: float,
    gtol: float,
    max_iter: int,
    w0: FloatArray | None = None,
) -> FloatArray:
    """Active-set projected Newton for min_w f(w) on the simplex, from ``w0`` (its support is
    the first face). Fast and exact where ∇²f is well conditioned; it may stop short where the
    soft maximum is nearly hard (large |v|/λ), so the caller certifies its answer."""
    m = v.shape[1]
    w = np.full(m, 1.0 / m) if w0 is None else w0.copy()
    free = w > 0
    f, g, p = _evaluate(v, lam, w)
    stalled = False
    for _ in range(max_iter):
        idx = np.flatnonzero(free)
        gf = g[idx]
        mu = float(gf.mean())
        spread = float(np.abs(gf - mu).max())
        if stalled or spread <= gtol:
            stalled = False
            # optimal on the face (or no progress left): release the fixed coordinate whose
            # gradient is most below μ (by more than the gradient's own noise, so a
            # degenerate one does not cycle)
            fixed = np.flatnonzero(~free)
            if fixed.size == 0 or float(g[fixed].min()) >= mu - max(gtol, 10 * spread):
                return w
            free[fixed[int(np.argmin(g[fixed]))]] = True
            continue
        h = _hessian(v, lam, p, idx)
        nf = idx.size
        kkt = np.zeros((nf + 1, nf + 1))
        kkt[:nf, :nf] = h + np.eye(nf) * (1e-12 * (1.0 + float(np.trace(h))))
        kkt[:nf, nf] = kkt[nf, :nf] = 1.0
        try:
            d = np.linalg.solve(kkt, np.r_[-gf, 0.0])[:nf]
        except np.linalg.LinAlgError:
            d = -(gf - mu)
        slope = float(gf @ d)
        if not slope < 0:
            d = -(gf - mu)
            slope = float(gf @ d)
        if -slope <= 1e-15 * (1.0 + abs(f)):  # Newton decrement below float resolution
            stalled = True
            continue
        ratio = np.where(d < 0, -w[idx] / np.where(d < 0, d, -1.0), math.inf)
        if float(ratio.min()) <= 0.0:
            # Newton wants to push a just-released zero coordinate negative: take the
            # projected gradient instead, which raises it (its gradient is below μ)
            d = -(gf - mu)
            slope = float(gf @ d)
            ratio = np.where(d < 0, -w[idx] / np.where(d < 0, d, -1.0), math.inf)
        blocking = int(np.argmin(ratio))
        alpha_max = float(ratio[blocking])
        alpha = min(1.0, alpha_max)
        while True:
            trial = w.copy()
            trial[idx] = np.maximum(w[idx] + alpha * d, 0.0)
            if alpha == alpha_max:
                trial[idx[blocking]] = 0.0  # the step stops on this face
            trial /= trial.sum()
            f_new, g_new, p_new = _evaluate(v, lam, trial)
            if f_new <= f + 1e-4 * alpha * slope:
                break
            alpha *= 0.5
            if alpha < 1e-12:  # the line search stalled: not a proof of optimality
                stalled = True
                break
        if stalled:
            continue
        hit = alpha == alpha_max
        w, f, g, p = trial, f_new, g_new, p_new
        if hit:
            free &= w > 0
            if not free.any():  # cannot happen on the simplex, but never leave an empty face
                free[int(np.argmax(w))] = True
    return w


def _barrier(v: FloatArray, lam: float, target: float) -> FloatArray:
    """Log-barrier interior-point method: min f(w) − μ Σ log w_j on Σw = 1, μ → 0.

    The barrier adds the curvature μ/w² that f lacks where the soft maximum is nearly hard.
    Each μ is followed until the Frank–Wolfe gap is within 2·m·μ (on the central path it is
    ≤ m·μ); f is far from quadratic there, so a step the line search accepts is stretched
    while it keeps descending.
    """
    m = v.shape[1]
    w = np.full(m, 1.0 / m)
    f, g, p = _evaluate(v, lam, w)
    mu = max(_fw_gap(w, g), target) / m
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, m] = kkt[m, :m] = 1.0
    every = np.arange(m)

    def barrier_value(
        x: FloatArray,
    ) -> tuple[float, FloatArray, tuple[float, FloatArray, FloatArray]]:
        x = np.maximum(x, 1e-300)
        x /= x.sum()
        fx = _evaluate(v, lam, x)
        return fx[0] - mu * float(np.log(x).sum()), x, fx

    while m * mu > 1e-3 * target:
        for _ in range(50):
            if _fw_gap(w, g) <= max(2 * m * mu, target):
                break
            gb = g - mu / w
            kkt[:m, :m] = _hessian(v, lam, p, every) + np.diag(mu / w**2)
            try:
                d = np.linalg.solve(kkt, np.r_[-gb, 0.0])[:m]
            except np.linalg.LinAlgError:
                d = -(gb - gb.mean())
            slope = float(gb @ d)
            if not slope < 0:
                d = -(gb - gb.mean())
                slope = float(gb @ d)
            neg = d < 0
            alpha_max = 0.99 * float((-w[neg] / d[neg]).min()) if neg.any() else math.inf
            alpha = min(1.0, alpha_max)
            start = f - mu * float(np.log(w).sum())
            value, x, fx = barrier_value(w + alpha * d)
            if value <= start + 1e-4 * alpha * slope:
                while 2 * alpha <= alpha_max:
                    value2, x2, fx2 = barrier_value(w + 2 * alpha * d)
                    if value2 >= value:
                        break
                    alpha, value, x, fx = 2 * alpha, value2, x2, fx2
            else:
                while alpha > 1e-14 and value > start + 1e-4 * alpha * slope:
                    alpha *= 0.5
                    value, x, fx = barrier_value(w + alpha * d)
                if alpha <= 1e-14:
                    break  # no descent left in floating point at this μ
            w, (f, g, p) = x, fx
        if _fw_gap(w, g) <= target:
            break
        mu *= 0.1
    return w


def _cvxpy() -> Any:
    """cvxpy, the reference solver: an optional extra (``rewardhub[solver]``)."""
    from rewardhub._optional import require

    return require("cvxpy", "solver", "robust_weights(solver='cvxpy')")


def _cvxpy_weights(v: FloatArray, lam: float) -> FloatArray:
    cp: Any = _cvxpy()
    k, m = v.shape
    w = cp.Variable(m)
    problem = cp.Problem(
        cp.Minimize(lam * cp.log_sum_exp(v @ w / lam) - lam * math.log(k)),
        [w >= 0, cp.sum(w) == 1],
    )
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    if w.value is None:
        raise AggregationError(f"cvxpy could not solve the robust weights ({problem.status})")
    out: FloatArray = np.clip(np.asarray(w.value, dtype=np.float64), 0.0, None)
    out /= out.sum()
    return out


def _cvxpy_or_error(v: FloatArray, lam: float) -> FloatArray | AggregationError:
    try:
        return _cvxpy_weights(v, lam)
    except AggregationError as exc:
        return exc


def robust_weights(
    values: npt.ArrayLike,
    lam: float = 1.0,
    *,
    solver: Solver = "newton",
    tol: float = 1e-10,
    gap_tol: float = 1e-7,
    max_iter: int = 200,
) -> FloatArray:
    """RMOD's worst-case weights w* ∈ Δ_m for K candidates' reward vectors (K × m).

    w* = argmin_w λ·log((1/K) Σ_k exp(values[k]·w / λ)). Small λ weighs the best candidate
    (w* → the weights under which the best candidate is worst); large λ the average.
    NaN is not allowed here (impute or drop abstained cells first).

    The answer is certified: its duality gap (:func:`duality_gap`, a bound on how far its
    objective is above the optimum) is ≤ ``gap_tol``·max|values|, or an AggregationError is
    raised. ``tol`` is the stationarity the Newton method aims for (times max|values|).
    """
    v = check_values(values)
    if np.isnan(v).any():
        raise AggregationError(
            "robust_weights got NaN; impute or drop abstained cells first "
            "(the robust aggregator fills them with the group mean)"
        )
    lam = check_positive(lam, "lam")
    gap_tol = check_positive(gap_tol, "gap_tol")
    if v.shape[1] == 1:
        return np.ones(1)
    if solver == "cvxpy":
        return _cvxpy_weights(v, lam)
    if solver != "newton":
        raise AggregationError(f"unknown solver {solver!r}; use 'newton' or 'cvxpy'")
    return _certified(v, lam, tol, gap_tol, max_iter)


def _certified(v: FloatArray, lam: float, tol: float, gap_tol: float, max_iter: int) -> FloatArray:
    """Active-set Newton with an exact line search (plain Python for small instances, numpy
    vectors for larger ones); where it does not certify, numpy Newton with backtracking, the
    vectorised solver and the barrier method; and any answer only with a certified duality
    gap ≤ gap_tol·max|v| (never a wrong w* returned silently)."""
    scale = float(np.abs(v).max())
    target = tol * scale
    k, m = v.shape
    # the problem is scale-free: argmin f(w; v, λ) = argmin f(w; v/c, λ/c) and the gap scales
    # by c, so the plain-Python solver works on max|v| = 1 (no under- or overflow in its
    # products however small or large the rewards are)
    unit = scale if scale > 0 else 1.0
    lam_unit = lam / unit
    if 0 < lam_unit < math.inf:
        # active-set Newton with an exact line search: a few steps at any scale, in plain
        # Python for small instances and with numpy vectors for larger ones
        scaled = v / unit
        if k * m * m <= small.MAX_WORK:
            rows = scaled.tolist()
            first = np.array(small.solve(small.Lists(rows, lam_unit), tol, max_iter))
            first_gap = small.gap(rows, lam_unit, first.tolist())
        else:
            first = np.array(small.solve(small.Arrays(scaled, lam_unit), tol, max_iter))
            first_gap = _fw_gap(first, _evaluate(scaled, lam_unit, first)[1])
        if first_gap <= gap_tol:
            return first
    w = _newton_simplex(v, lam, target, max_iter)
    gap = _fw_gap(w, _evaluate(v, lam, w)[1])
    # Newton aims at ``tol``; where it stops short of it (floating point near a kink) its
    # answer still stands when the certificate holds
    if gap <= gap_tol * scale:
        return w
    # the batched solver on this one group: a barrier that stops once it has found the face,
    # then Newton on that face (much cheaper than following the barrier down to ``tol``)
    batched, batched_gap = solve_groups(
        v[None],
        np.ones((1, v.shape[0]), dtype=bool),
        lam,
        np.array([target]),
        np.array([gap_tol * scale]),
    )
    if batched_gap[0] <= gap_tol * scale:
        found: FloatArray = batched[0]
        return found
    inner = _barrier(v, lam, target)
    # polish on the face the barrier found: its near-zero coordinates become exact zeros
    support = inner > 1e-9 * inner.max()
    start = np.where(support, inner, 0.0) / inner[support].sum()
    for cand in (_newton_simplex(v, lam, target, max_iter, start), inner, w):
        cand_gap = _fw_gap(cand, _evaluate(v, lam, cand)[1])
        if cand_gap <= target:
            return cand
        if cand_gap < gap:
            w, gap = cand, cand_gap
    if gap <= gap_tol * scale:
        return w
    raise AggregationError(
        f"robust_weights could not certify its optimum (duality gap {gap:.3g} > "
        f"{gap_tol * scale:.3g} = gap_tol·max|values|); raise gap_tol or use solver='cvxpy'"
    )


def robust_weights_batched(
    groups: npt.ArrayLike | Sequence[npt.ArrayLike],
    lam: float = 1.0,
    *,
    tol: float = 1e-10,
    gap_tol: float = 1e-7,
    max_iter: int = 200,
) -> FloatArray:
    """:func:`robust_weights` for many groups in one vectorised solve: ``groups`` is a
    G × K × m array or a sequence of G arrays (K_g × m, K_g may differ). Returns G × m.

    Every group is certified exactly as :func:`robust_weights` certifies one (a group the
    batched solver leaves uncertified is solved again alone), so the answers agree with a
    per-group loop; an uncertifiable group raises AggregationError naming it.
    """
    lam = check_positive(lam, "lam")
    check_positive(gap_tol, "gap_tol")
    out = _solve_many(_as_groups(groups), lam, tol, gap_tol, max_iter)
    for g, w in enumerate(out):
        if isinstance(w, AggregationError):
            raise AggregationError(f"group {g}: {w}")
    return np.stack(out) if out else np.zeros((0, 0))  # type: ignore[arg-type]


def _as_groups(groups: npt.ArrayLike | Sequence[npt.ArrayLike]) -> list[FloatArray]:
    # a 3-D array iterates as its G blocks, like a sequence of 2-D ones
    blocks = [check_values(b) for b in groups]  # type: ignore[union-attr]
    if blocks and len({b.shape[1] for b in blocks}) != 1:
        raise AggregationError(
            f"robust_weights_batched: every group needs the same objectives, got widths "
            f"{sorted({b.shape[1] for b in blocks})}"
        )
    for g, b in enumerate(blocks):
        if np.isnan(b).any():
            raise AggregationError(
                f"robust_weights_batched: group {g} has NaN; impute or drop abstained cells first"
            )
    return blocks


def _solve_many(
    blocks: Sequence[FloatArray], lam: float, tol: float, gap_tol: float, max_iter: int
) -> list[FloatArray | AggregationError]:
    """Certified weights per block (or the error that says why a block has none)."""
    if not blocks:
        return []
    m = blocks[0].shape[1]
    if m == 1:
        return [np.ones(1) for _ in blocks]
    if len(blocks) < SMALL_BATCH:
        # a few groups: the single-instance solver per group beats the vectorised one's fixed
        # numpy overhead
        return [_certified_or_error(b, lam, tol, gap_tol, max_iter) for b in blocks]
    kmax = max(b.shape[0] for b in blocks)
    v = np.zeros((len(blocks), kmax, m))
    mask = np.zeros((len(blocks), kmax), dtype=bool)
    for g, b in enumerate(blocks):
        v[g, : b.shape[0]] = b
        mask[g, : b.shape[0]] = True
    scale = np.abs(v).max(axis=(1, 2))
    weights, gaps = solve_groups(v, mask, lam, tol * scale, gap_tol * scale)
    out: list[FloatArray | AggregationError] = []
    for g, b in enumerate(blocks):
        if gaps[g] <= gap_tol * scale[g]:  # the certificate robust_weights gives
            out.append(weights[g])
            continue
        # the single-group solver: Newton, barrier, polish, or a clear error
        out.append(_certified_or_error(b, lam, tol, gap_tol, max_iter))
    return out


def _certified_or_error(
    v: FloatArray, lam: float, tol: float, gap_tol: float, max_iter: int
) -> FloatArray | AggregationError:
    try:
        return _certified(v, lam, tol, gap_tol, max_iter)
    except AggregationError as exc:
        return exc


def _impute(v: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Fill NaN with the column mean of the present cells; report columns with no value."""
    present = ~np.isnan(v)
    has: npt.NDArray[np.bool_] = np.any(present, axis=0)
    mean = np.where(present, v, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    filled: FloatArray = np.where(present, v, mean)
    return filled, has


class RobustConfig(ScopedConfig):
    lam: float = Field(1.0, gt=0, description="temperature λ of the soft maximum over candidates")
    solver: Solver = Field(
        "newton", description="newton (fast) or cvxpy (reference; needs rewardhub[solver])"
    )


class Robust(Aggregator):
    """RMOD: per group of candidates, total = values · w* with w* the worst-case weights."""

    method = "robust"
    Config = RobustConfig
    summary = "values · w*, w* = argmin_w λ log mean exp(values·w/λ) per group (RMOD)"

    def __init__(
        self, config: BaseModel | Mapping[str, Any] | None = None, objectives: Sequence[str] = ()
    ) -> None:
        super().__init__(config, objectives)
        if self.config.solver == "cvxpy":
            _cvxpy()  # a missing extra is reported when the pipeline is built, before scoring

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        n, m = v.shape
        groups = self.config.groups(ctx)
        if groups is None:
            groups = np.zeros(n, dtype=np.intp)
        total = np.full(n, np.nan)
        weights = np.zeros((n, m))
        empty: npt.NDArray[np.bool_] = np.all(np.isnan(v), axis=1)
        failed: dict[int, str] = {}
        # one vectorised solve per pattern of present objectives (usually one pattern)
        by_pattern: dict[bytes, list[tuple[IntArray, FloatArray, npt.NDArray[np.bool_]]]] = {}
        for rows in group_rows(groups):
            rows = rows[~empty[rows]]  # a sample with no value is no candidate
            if rows.size == 0:
                continue
            filled, has = _impute(v[rows])
            if not has.any():
                weights[rows] = 0.0
                total[rows] = 0.0
                continue
            by_pattern.setdefault(has.tobytes(), []).append((rows, filled, has))
        for members in by_pattern.values():
            has = members[0][2]
            blocks = [block[:, has] for _, block, _ in members]
            solved = (
                _solve_many(blocks, self.config.lam, 1e-10, 1e-7, 200)
                if (self.config.solver == "newton")
                else [_cvxpy_or_error(b, self.config.lam) for b in blocks]
            )
            for (rows, block, _), w_has in zip(members, solved):
                if isinstance(w_has, AggregationError):  # uncertified: this group is unscorable
                    failed.update(dict.fromkeys(rows.tolist(), str(w_has)))
                    continue
                w = np.zeros(m)
                w[has] = w_has
                weights[rows] = w
                total[rows] = block[:, has] @ w_has
        names = ctx.objectives
        contrib = v * weights

        def explain(i: int) -> dict[str, Any]:
            rec: dict[str, Any] = {
                "weights": dict(zip(names, weights[i].tolist())),
                "contributions": json_row(names, contrib[i].tolist()),
            }
            if i in failed:
                rec["error"] = failed[i]
            return rec

        return Aggregation(
            total, {"method": self.method, "per_sample": PerSample(len(total), explain)}
        )


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Robust)
