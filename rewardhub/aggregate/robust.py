"""Robust (worst-case) objective weights, as in Robust Multi-Objective Decoding (RMOD).

Given K candidate reward vectors (K × m), RMOD picks the weights on the simplex that make the
soft-best candidate as bad as possible:

    w* = argmin_{w ∈ Δ_m}  λ · log( (1/K) Σ_k exp(values[k] · w / λ) )

The objective is convex (a log-sum-exp of linear maps). :func:`robust_weights` solves it with
an active-set Newton method on the simplex (exact KKT, a few iterations); ``solver="cvxpy"``
uses cvxpy as the reference.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from rewardhub.aggregate._checks import check_positive, check_values
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

Solver = Literal["newton", "cvxpy"]


def robust_objective(values: npt.ArrayLike, weights: npt.ArrayLike, lam: float = 1.0) -> float:
    """λ · log mean_k exp(values[k] · w / λ): the quantity :func:`robust_weights` minimises."""
    v = check_values(values)
    s = v @ np.asarray(weights, dtype=np.float64) / lam
    top = float(s.max())
    return lam * (top + math.log(float(np.exp(s - top).mean())))


def _newton_simplex(v: FloatArray, lam: float, tol: float, max_iter: int) -> tuple[FloatArray, int]:
    """Active-set projected Newton for min_w lam·LSE(v w / lam) on the simplex."""
    k, m = v.shape
    w = np.full(m, 1.0 / m)
    free = np.ones(m, dtype=bool)
    scale = 1.0 + float(np.abs(v).max())
    gtol = tol * scale

    def evaluate(x: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        s = v @ x / lam
        top = float(s.max())
        e = np.exp(s - top)
        z = float(e.sum())
        p = e / z
        return lam * (top + math.log(z / k)), v.T @ p, p

    f, g, p = evaluate(w)
    stalled = False
    for it in range(1, max_iter + 1):
        idx = np.flatnonzero(free)
        gf = g[idx]
        mu = float(gf.mean())
        spread = float(np.abs(gf - mu).max())
        if stalled or spread <= gtol:
            stalled = False
            # optimal on the face: release the fixed coordinate whose gradient is most below μ
            # (by more than the gradient's own noise, so a degenerate one does not cycle)
            fixed = np.flatnonzero(~free)
            if fixed.size == 0 or float(g[fixed].min()) >= mu - max(gtol, 10 * spread):
                return w, it
            free[fixed[int(np.argmin(g[fixed]))]] = True
            continue
        vc = v[:, idx] - p @ v[:, idx]
        h = (vc.T * p) @ vc / lam
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
            f_new, g_new, p_new = evaluate(trial)
            if f_new <= f + 1e-4 * alpha * slope:
                break
            alpha *= 0.5
            if alpha < 1e-12:  # no progress left in floating point: optimal on this face
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
    raise AggregationError(
        f"robust_weights did not converge in {max_iter} iterations; "
        "raise max_iter or use solver='cvxpy'"
    )


def _cvxpy_weights(v: FloatArray, lam: float) -> FloatArray:
    try:
        cp: Any = importlib.import_module("cvxpy")
    except ImportError:  # pragma: no cover - cvxpy is a core dependency
        from rewardhub.errors import MissingExtraError

        raise MissingExtraError("cvxpy", "all", "robust_weights(solver='cvxpy')") from None
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


def robust_weights(
    values: npt.ArrayLike,
    lam: float = 1.0,
    *,
    solver: Solver = "newton",
    tol: float = 1e-10,
    max_iter: int = 200,
) -> FloatArray:
    """RMOD's worst-case weights w* ∈ Δ_m for K candidates' reward vectors (K × m).

    w* = argmin_w λ·log((1/K) Σ_k exp(values[k]·w / λ)). Small λ weighs the best candidate
    (w* → the weights under which the best candidate is worst); large λ the average.
    NaN is not allowed here (impute or drop abstained cells first).
    """
    v = check_values(values)
    if np.isnan(v).any():
        raise AggregationError(
            "robust_weights got NaN; impute or drop abstained cells first "
            "(the robust aggregator fills them with the group mean)"
        )
    lam = check_positive(lam, "lam")
    if v.shape[1] == 1:
        return np.ones(1)
    if solver == "cvxpy":
        return _cvxpy_weights(v, lam)
    if solver != "newton":
        raise AggregationError(f"unknown solver {solver!r}; use 'newton' or 'cvxpy'")
    return _newton_simplex(v, lam, tol, max_iter)[0]


def _impute(v: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Fill NaN with the column mean of the present cells; report columns with no value."""
    present = ~np.isnan(v)
    has: npt.NDArray[np.bool_] = np.any(present, axis=0)
    mean = np.where(present, v, 0.0).sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    filled: FloatArray = np.where(present, v, mean)
    return filled, has


class RobustConfig(ScopedConfig):
    lam: float = Field(1.0, gt=0, description="temperature λ of the soft maximum over candidates")
    solver: Solver = Field("newton", description="newton (fast) or cvxpy (reference)")


class Robust(Aggregator):
    """RMOD: per group of candidates, total = values · w* with w* the worst-case weights."""

    method = "robust"
    Config = RobustConfig
    summary = "values · w*, w* = argmin_w λ log mean exp(values·w/λ) per group (RMOD)"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        n, m = v.shape
        groups = self.config.groups(ctx)
        if groups is None:
            groups = np.zeros(n, dtype=np.intp)
        total = np.full(n, np.nan)
        weights = np.zeros((n, m))
        empty: npt.NDArray[np.bool_] = np.all(np.isnan(v), axis=1)
        for rows in group_rows(groups):
            rows = rows[~empty[rows]]  # a sample with no value is no candidate
            if rows.size == 0:
                continue
            filled, has = _impute(v[rows])
            w = np.zeros(m)
            if has.any():
                w[has] = robust_weights(filled[:, has], self.config.lam, solver=self.config.solver)
            weights[rows] = w
            total[rows] = filled[:, has] @ w[has]
        names = ctx.objectives
        contrib = v * weights

        def explain(i: int) -> dict[str, Any]:
            return {
                "weights": dict(zip(names, weights[i].tolist())),
                "contributions": json_row(names, contrib[i].tolist()),
            }

        return Aggregation(
            total, {"method": self.method, "per_sample": PerSample(len(total), explain)}
        )


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Robust)
