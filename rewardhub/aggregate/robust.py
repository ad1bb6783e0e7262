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
against the duality gap; one that is not certified (none in the tests' and benchmarks' sweeps)
falls back to cvxpy when it is installed, under the same certificate, and otherwise raises
an AggregationError naming the instance. ``solver="cvxpy"`` uses cvxpy as the reference.
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
from rewardhub.errors import AggregationError, MissingExtraError
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
    try:
        problem.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    except cp.error.SolverError as exc:
        raise AggregationError(f"cvxpy could not solve the robust weights ({exc})") from exc
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
    vectors for larger ones), returned only with a certified duality gap ≤ gap_tol·max|v|;
    where it is not certified (no instance in the tests' or benchmarks' sweeps), cvxpy when
    installed, under the same certificate, else an AggregationError naming the instance."""
    scale = float(np.abs(v).max())
    k, m = v.shape
    # the problem is scale-free: argmin f(w; v, λ) = argmin f(w; v/c, λ/c) and the gap scales
    # by c, so the solver works on max|v| = 1 (no under- or overflow in its products however
    # small or large the rewards are)
    unit = scale if scale > 0 else 1.0
    lam_unit = lam / unit
    if not 0 < lam_unit < math.inf:  # λ under- or overflows against the rewards' scale
        raise AggregationError(
            f"robust_weights: λ = {lam:.3g} is out of range for rewards of size {scale:.3g}; "
            "rescale the rewards or λ"
        )
    scaled = v / unit
    if k * m * m <= small.MAX_WORK:
        rows = scaled.tolist()
        problem: small.Problem = small.Lists(rows, lam_unit)
    else:
        problem = small.Arrays(scaled, lam_unit)

    def attempt(start: list[float] | None) -> tuple[FloatArray, float]:
        w = np.array(small.solve(problem, tol, max_iter, start))
        if isinstance(problem, small.Lists):
            return w, small.gap(rows, lam_unit, w.tolist())
        return w, _fw_gap(w, _evaluate(scaled, lam_unit, w)[1])

    w, gap = attempt(None)
    if gap <= gap_tol:
        return w
    # the last resort: cvxpy (the reference solver), if installed, finds the face (its
    # interior-point answer is not certified at small λ by itself) and the solver restarts on
    # it; the answer is returned under the same certificate
    try:
        ref = _cvxpy_weights(v, lam)
    except (AggregationError, MissingExtraError):
        pass
    else:
        support = np.where(ref > 1e-9 * ref.max(), ref, 0.0)
        polished, polished_gap = attempt((support / support.sum()).tolist())
        if polished_gap <= gap_tol:
            return polished
        gap = min(gap, polished_gap)
    gap *= unit
    raise AggregationError(
        f"robust_weights could not certify its optimum for a {k} × {m} instance at λ = {lam:.3g} "
        f"(max|values| = {scale:.3g}): duality gap {gap:.3g} > {gap_tol * scale:.3g} = "
        "gap_tol·max|values|; raise gap_tol, rescale the rewards or λ, or install "
        "rewardhub[solver] (cvxpy) for the reference solver"
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
    weights, gaps = solve_groups(v, mask, lam, tol * scale)
    out: list[FloatArray | AggregationError] = []
    for g, b in enumerate(blocks):
        if gaps[g] <= gap_tol * scale[g]:  # the certificate robust_weights gives
            out.append(weights[g])
            continue
        # the single-group solver: its own active set, cvxpy, or a clear error
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
