"""Uncertainty-aware rewards from reward-model ensembles (Coste et al. 2023, "Reward Model
Ensembles Help Mitigate Overoptimization"): worst case (WCO), uncertainty-weighted (UWO) and
the lower confidence bound (LCB).

Aggregators read the spread from ``RewardBatch.std`` (set by ensemble and sampled-judge
sources), or compute it from member columns named in ``members``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from rewardhub.aggregate._checks import check_values
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    AggregatorConfig,
    Context,
    PerSample,
)
from rewardhub.aggregate.scalarize import _contributions, resolve_weights_mapping, weighted_sum
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray, json_row

#: UWO's λ from the ensembles paper: 0.5 for best-of-n, 0.1 for RL (PPO)
UWO_LAMBDA_BEST_OF_N = 0.5
UWO_LAMBDA_RL = 0.1


def _members(members: npt.ArrayLike) -> FloatArray:
    m = np.asarray(members, dtype=np.float64)
    if m.ndim == 2:
        m = m[:, :, None]
    if m.ndim != 3 or 0 in m.shape:
        raise AggregationError(
            f"members must be (members × n × k) (or members × n), got shape {m.shape}"
        )
    check_values(m.reshape(-1, m.shape[2]), name="members")
    return m


def _member_mean_var(m: FloatArray) -> tuple[FloatArray, FloatArray]:
    present = ~np.isnan(m)
    count = present.sum(axis=0)
    safe = np.maximum(count, 1)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.where(present, m, 0.0).sum(axis=0) / safe, np.nan)
        var = np.where(present, m - mean, 0.0)
        var = np.where(count > 0, (var**2).sum(axis=0) / safe, np.nan)
    return mean, var


def ensemble_stats(members: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Mean and (population) variance over ensemble members (m × n × k → two n × k)."""
    return _member_mean_var(_members(members))


def wco(members: npt.ArrayLike) -> FloatArray:
    """Worst-case optimisation: the minimum over ensemble members (m × n × k → n × k)."""
    m = _members(members)
    out: FloatArray = np.fmin.reduce(m, axis=0)  # NaN only where every member abstained
    return out


def uwo(mean: npt.ArrayLike, var: npt.ArrayLike, lam: float = UWO_LAMBDA_BEST_OF_N) -> FloatArray:
    """Uncertainty-weighted optimisation: mean − λ·var (λ = 0.5 for best-of-n, 0.1 for RL)."""
    mu, v = _pair(mean, var, "var")
    if (v < 0).any():
        raise AggregationError("var must be ≥ 0 (pass the variance, not a signed spread)")
    return mu - float(lam) * v


def lcb(mean: npt.ArrayLike, std: npt.ArrayLike, k: float = 1.0) -> FloatArray:
    """Lower confidence bound: mean − k·std."""
    mu, s = _pair(mean, std, "std")
    if (s < 0).any():
        raise AggregationError("std must be ≥ 0")
    return mu - float(k) * s


def _pair(a: npt.ArrayLike, b: npt.ArrayLike, name: str) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise AggregationError(f"mean has shape {x.shape} but {name} has shape {y.shape}")
    if x.size == 0:
        raise AggregationError("mean is empty; pass at least one value")
    if np.isinf(x).any() or np.isinf(y).any():
        raise AggregationError(f"mean and {name} must be finite (NaN abstains)")
    return x, y


# -- registered aggregators -------------------------------------------------------------------


class UncertaintyConfig(AggregatorConfig):
    weights: dict[str, float] = Field(
        default_factory=dict, description="weight per objective in the final sum (default 1)"
    )
    members: dict[str, list[str]] | None = Field(
        None,
        description="objective → its ensemble member columns; when set, the spread comes "
        "from the members instead of RewardBatch.std",
    )


class _Uncertainty(Aggregator):
    """Penalise each objective by its uncertainty, then take the weighted sum."""

    def penalised(self, mean: FloatArray, var: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _penalise(
        self, values: FloatArray, ctx: Context, mean: FloatArray, var: FloatArray
    ) -> FloatArray:
        return self.penalised(mean, var)

    @property
    def uses_std(self) -> bool:
        return not self.config.members  # with members, the spread comes from their columns

    def _outputs(self, ctx: Context) -> tuple[str, ...]:
        return tuple(self.config.members) if self.config.members else ctx.objectives

    def _mean_var(self, values: FloatArray, ctx: Context) -> tuple[FloatArray, FloatArray]:
        members: Mapping[str, Sequence[str]] | None = self.config.members
        if members:
            cols = []
            for name, cols_of in members.items():
                unknown = [c for c in cols_of if c not in ctx.objectives]
                if unknown or not cols_of:
                    raise AggregationError(
                        f"members of {name!r} name unknown objective(s) {unknown or '[]'}; "
                        f"the objectives are {list(ctx.objectives)}"
                    )
                cols.append([ctx.objectives.index(c) for c in cols_of])
            size = max(len(c) for c in cols)
            stack = np.full((size, values.shape[0], len(cols)), np.nan)
            for j, c in enumerate(cols):
                stack[: len(c), :, j] = values[:, c].T
            return _member_mean_var(stack)
        if ctx.std is None:
            raise AggregationError(
                f"aggregator {self.method!r} needs the spread of each reward, but the batch has "
                "no std: use a source that reports std (an ensemble source, or a judge sampled "
                "several times), or name ensemble member columns with `members:`"
            )
        std = np.asarray(ctx.std, dtype=np.float64)
        if std.shape != values.shape:
            raise AggregationError(f"std has shape {std.shape}, values {values.shape}")
        # a source that gives no std is not certain: its spread is unknown, never 0
        no_std = np.isnan(std) & ~np.isnan(values)
        raw = ctx.raw
        if raw is not None and np.shape(raw) == values.shape:
            filled = no_std & np.isnan(raw)  # on_abstain: fill put a constant there: exact
            std = np.where(filled, 0.0, std)
            no_std &= ~filled
        if no_std.any():
            names = sorted({ctx.objectives[j] for j in np.flatnonzero(no_std.any(axis=0))})
            raise AggregationError(
                f"aggregator {self.method!r} needs the spread of each reward, but objective(s) "
                f"{names} have a value without std (their source reports none); use sources "
                "that report std for every objective, name ensemble member columns with "
                "`members:`, or use a method that ignores uncertainty"
            )
        return values, std**2

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        mean, var = self._mean_var(v, ctx)
        pen = self._penalise(v, ctx, mean, var)
        names = self._outputs(ctx)
        base = dict.fromkeys(names, 1.0)
        weights: Mapping[str, float] = self.config.weights
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise AggregationError(
                f"weights name unknown objective(s) {unknown}; the objectives are {list(names)}"
            )
        base.update(weights)
        if ctx.weights:  # per call, over the spec's
            base.update(resolve_weights_mapping(ctx.weights, names))
        w = np.array([base[o] for o in names])
        total = weighted_sum(pen, w)
        contrib = _contributions(pen, np.broadcast_to(w, pen.shape), names)

        def explain(i: int) -> dict[str, Any]:
            rec = contrib[i]
            rec["mean"] = json_row(names, mean[i].tolist())
            rec["std"] = json_row(names, np.sqrt(var[i]).tolist())
            return rec

        return Aggregation(
            total, {"method": self.method, "per_sample": PerSample(len(total), explain)}
        )


class UWOConfig(UncertaintyConfig):
    lam: float = Field(
        UWO_LAMBDA_BEST_OF_N, ge=0, description="variance penalty λ (0.5 best-of-n, 0.1 RL)"
    )


class UWO(_Uncertainty):
    """Uncertainty-weighted optimisation: Σ_i w_i (mean_i − λ·var_i)."""

    method = "uwo"
    rowwise = True
    Config = UWOConfig
    summary = "Σ w_i (mean_i − λ var_i) (ensemble uncertainty penalty)"

    def penalised(self, mean: FloatArray, var: FloatArray) -> FloatArray:
        return uwo(mean, var, self.config.lam)


class LCBConfig(UncertaintyConfig):
    k: float = Field(1.0, ge=0, description="number of standard deviations subtracted")


class LCB(_Uncertainty):
    """Lower confidence bound: Σ_i w_i (mean_i − k·std_i)."""

    method = "lcb"
    rowwise = True
    Config = LCBConfig
    summary = "Σ w_i (mean_i − k std_i) (lower confidence bound)"

    def penalised(self, mean: FloatArray, var: FloatArray) -> FloatArray:
        return lcb(mean, np.sqrt(var), self.config.k)


class WCOConfig(AggregatorConfig):
    weights: dict[str, float] = Field(default_factory=dict, description="weight per objective")
    members: dict[str, list[str]] = Field(
        description="objective → its ensemble member columns (the minimum is taken over them)"
    )


class WCO(_Uncertainty):
    """Worst case over ensemble members per objective, then the weighted sum."""

    method = "wco"
    rowwise = True
    Config = WCOConfig
    summary = "Σ w_i min_members r_i (worst case over an ensemble)"

    def _penalise(
        self, values: FloatArray, ctx: Context, mean: FloatArray, var: FloatArray
    ) -> FloatArray:
        cols = [[ctx.objectives.index(c) for c in cs] for cs in self.config.members.values()]
        return np.stack([np.fmin.reduce(values[:, c], axis=1) for c in cols], axis=1)


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    for cls in (UWO, LCB, WCO):
        registry.add(cls)
