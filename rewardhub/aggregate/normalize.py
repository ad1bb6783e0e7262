"""Normalisers: rescale each objective before aggregation (batch-wide or per group).

NaN (abstained) cells stay NaN and are ignored by every statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from rewardhub.aggregate._checks import check_groups, check_values
from rewardhub.aggregate.base import Context, Normalizer, NormalizerConfig, group_rows
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import NormalizerRegistry
from rewardhub.types import FloatArray


def _col_stats(v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Count, mean and population std per column over present cells (no warnings; 0 if none)."""
    present = ~np.isnan(v)
    count = present.sum(axis=0).astype(np.float64)
    safe = np.maximum(count, 1.0)
    x = np.where(present, v, 0.0)
    mean = x.sum(axis=0) / safe
    var = (np.where(present, v - mean, 0.0) ** 2).sum(axis=0) / safe
    return count, mean, np.sqrt(var)


def _inverse_scale(scale: FloatArray, eps: float) -> FloatArray:
    """1/scale where scale > eps, else 0 (a constant column maps to a constant)."""
    ok = scale > eps
    out: FloatArray = np.where(ok, 1.0 / np.where(ok, scale, 1.0), 0.0)
    return out


def zscore(values: npt.ArrayLike, eps: float = 1e-8) -> FloatArray:
    """(r − mean) / std per column, NaN-aware. A constant column becomes 0, never NaN."""
    v = check_values(values)
    _, mean, std = _col_stats(v)
    ok = std > eps
    return np.where(ok, (v - mean) / np.where(ok, std, 1.0), np.where(np.isnan(v), np.nan, 0.0))


def rank(values: npt.ArrayLike) -> FloatArray:
    """Each column's ranks mapped to [0, 1] (lowest 0, highest 1); ties get their average rank,
    so a constant column (or a single value) becomes 0.5."""
    v = check_values(values)
    out = np.full_like(v, np.nan)
    for j in range(v.shape[1]):
        col = v[:, j]
        idx = np.flatnonzero(~np.isnan(col))
        m = idx.size
        if m == 0:
            continue
        if m == 1:
            out[idx, j] = 0.5
            continue
        order = np.argsort(col[idx], kind="stable")
        sorted_vals = col[idx][order]
        starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
        ends = np.r_[starts[1:], m]
        avg = (starts + ends - 1) / 2.0  # 0-based average position of each tie run
        ranks = np.repeat(avg, ends - starts)
        r = np.empty(m)
        r[order] = ranks
        out[idx, j] = r / (m - 1)
    return out


def minmax(values: npt.ArrayLike) -> FloatArray:
    """(r − min) / (max − min) per column, to [0, 1]; a constant column becomes 0.5."""
    v = check_values(values)
    present = ~np.isnan(v)
    lo = np.where(present, v, np.inf).min(axis=0)
    hi = np.where(present, v, -np.inf).max(axis=0)
    span = hi - lo
    ok = span > 0
    return np.where(ok, (v - lo) / np.where(ok, span, 1.0), np.where(np.isnan(v), np.nan, 0.5))


def clip(
    values: npt.ArrayLike, low: npt.ArrayLike = -np.inf, high: npt.ArrayLike = np.inf
) -> FloatArray:
    """Clip each column to [low, high] (scalars or one bound per objective)."""
    v = check_values(values)
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), (v.shape[1],))
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), (v.shape[1],))
    if (lo > hi).any():
        raise AggregationError(
            f"clip bounds have low > high: low={lo.tolist()}, high={hi.tolist()}"
        )
    return np.clip(v, lo, hi)


def group_normalize(
    values: npt.ArrayLike,
    groups: npt.ArrayLike,
    scale: Literal["std", "none"] = "std",
    eps: float = 1e-8,
) -> FloatArray:
    """GRPO/GDPO-style advantage per objective: (r − group mean) / group std.

    Vectorised over groups. ``scale="none"`` only centres (Dr. GRPO). A group whose values
    are all equal (zero variance) or a group of one gives 0, never NaN.
    """
    v = check_values(values)
    g = check_groups(groups, v.shape[0])
    n_groups = int(g.max()) + 1
    present = ~np.isnan(v)
    x = np.where(present, v, 0.0)
    count = np.zeros((n_groups, v.shape[1]))
    total = np.zeros((n_groups, v.shape[1]))
    np.add.at(count, g, present.astype(np.float64))
    np.add.at(total, g, x)
    mean = total / np.maximum(count, 1.0)
    centred = np.where(present, v - mean[g], 0.0)
    if scale == "none":
        return np.where(present, centred, np.nan)
    sq = np.zeros((n_groups, v.shape[1]))
    np.add.at(sq, g, centred**2)
    std = np.sqrt(sq / np.maximum(count, 1.0))[g]
    ok = std > eps
    out = np.where(ok, centred / np.where(ok, std, 1.0), 0.0)
    return np.where(present, out, np.nan)


# -- registered normalisers -------------------------------------------------------------------


class NoNormalizer(Normalizer):
    """Leave values as the sources produced them."""

    method = "none"
    summary = "values unchanged"
    rowwise = True

    def transform(self, values: FloatArray) -> FloatArray:
        return values

    transforms_std = True

    def std_slope(self, values: FloatArray) -> FloatArray:
        return np.ones(values.shape[1])


class ZScore(Normalizer):
    """Standardise each objective to mean 0, std 1 (over the batch, or per group)."""

    method = "zscore"
    summary = "(r − mean) / std per objective"

    def transform(self, values: FloatArray) -> FloatArray:
        return zscore(values) if values.size else values

    transforms_std = True

    def std_slope(self, values: FloatArray) -> FloatArray:
        return _inverse_scale(_col_stats(values)[2], 1e-8)  # the same scale as zscore


class Rank(Normalizer):
    """Ranks to [0, 1] per objective, ties averaged (over the batch, or per group)."""

    method = "rank"
    summary = "rank to [0, 1], ties averaged"

    def transform(self, values: FloatArray) -> FloatArray:
        return rank(values) if values.size else values


class MinMax(Normalizer):
    """(r − min) / (max − min) per objective (over the batch, or per group); an objective
    with declared ``bounds`` maps them to [0, 1] instead (the same scale in every batch)."""

    method = "minmax"
    summary = "(r − min) / (max − min), or declared bounds → [0, 1]; constant → 0.5"
    transforms_std = True

    def transform(self, values: FloatArray) -> FloatArray:
        return minmax(values) if values.size else values

    def _declared(self, ctx: Context, k: int) -> tuple[FloatArray, FloatArray] | None:
        if not ctx.bounds or len(ctx.objectives) != k:
            return None
        lo = np.array([ctx.bounds.get(o, (np.nan, np.nan))[0] for o in ctx.objectives])
        hi = np.array([ctx.bounds.get(o, (np.nan, np.nan))[1] for o in ctx.objectives])
        return lo, hi

    def normalize(self, values: FloatArray, ctx: Context) -> FloatArray:
        out = super().normalize(values, ctx)
        declared = self._declared(ctx, values.shape[1])
        if declared is None:
            return out
        lo, hi = declared
        has = ~np.isnan(lo)
        out[:, has] = (values[:, has] - lo[has]) / (hi[has] - lo[has])
        return out

    def std_slope(self, values: FloatArray) -> FloatArray:
        present = ~np.isnan(values)
        span = np.where(present, values, -np.inf).max(axis=0) - np.where(
            present, values, np.inf
        ).min(axis=0)
        return _inverse_scale(span, 0.0)

    def normalize_std(self, values: FloatArray, std: FloatArray, ctx: Context) -> FloatArray:
        out = super().normalize_std(values, std, ctx)
        declared = self._declared(ctx, values.shape[1])
        if declared is None:
            return out
        lo, hi = declared
        has = ~np.isnan(lo)
        out[:, has] = std[:, has] / (hi[has] - lo[has])
        return out


Bound = float | dict[str, float] | None


class ClipConfig(NormalizerConfig):
    min: Bound = Field(None, description="lower bound (one, or per objective)")
    max: Bound = Field(None, description="upper bound (one, or per objective)")


class Clip(Normalizer):
    """Clip each objective to [min, max] (bounds global or per objective)."""

    method = "clip"
    Config = ClipConfig
    summary = "clip to [min, max]"
    rowwise = True

    def _bound(self, bound: Bound, objectives: Sequence[str], default: float) -> FloatArray:
        if bound is None:
            return np.full(len(objectives), default)
        if isinstance(bound, Mapping):
            unknown = sorted(set(bound) - set(objectives))
            if unknown:
                raise AggregationError(
                    f"clip bounds name unknown objective(s) {unknown}; the objectives are "
                    f"{list(objectives)}"
                )
            return np.array([float(bound.get(o, default)) for o in objectives])
        return np.full(len(objectives), float(bound))

    def normalize(self, values: FloatArray, ctx: Context) -> FloatArray:
        k = values.shape[1]
        names = ctx.objectives if len(ctx.objectives) == k else tuple(str(i) for i in range(k))
        lo = self._bound(self.config.min, names, -math.inf)
        hi = self._bound(self.config.max, names, math.inf)
        return clip(values, lo, hi) if values.size else values

    def transform(self, values: FloatArray) -> FloatArray:
        return self.normalize(values, Context(objectives=()))

    transforms_std = True

    def std_slope(self, values: FloatArray) -> FloatArray:
        # slope 1 inside the bounds; a clipped cell keeps its spread (still penalised)
        return np.ones(values.shape[1])

    def normalize_std(self, values: FloatArray, std: FloatArray, ctx: Context) -> FloatArray:
        return std


class GroupConfig(NormalizerConfig):
    per: Literal["batch", "group"] = Field("group", description="always per group")
    scale: Literal["std", "none"] = Field(
        "std", description="std: (r − mean)/std (GRPO); none: r − mean only (Dr. GRPO)"
    )
    eps: float = Field(1e-8, ge=0, description="a group std ≤ eps counts as zero variance → 0")

    @model_validator(mode="after")
    def _only_group(self) -> GroupConfig:
        if self.per != "group":
            raise ValueError("the group normaliser always works per group; drop per: batch")
        return self


class Group(Normalizer):
    """Normalise each objective within each group of samples sharing a prompt (GRPO/GDPO).

    The group is ``metadata["group"]`` or the identical prompt. Zero-variance groups give 0.
    """

    method = "group"
    Config = GroupConfig
    summary = "(r − group mean) / group std per objective (GDPO)"

    def normalize(self, values: FloatArray, ctx: Context) -> FloatArray:
        if values.size == 0:
            return values
        return group_normalize(values, ctx.groups, self.config.scale, self.config.eps)

    def transform(self, values: FloatArray) -> FloatArray:
        return group_normalize(values, np.zeros(values.shape[0]), self.config.scale)

    transforms_std = True

    def normalize_std(self, values: FloatArray, std: FloatArray, ctx: Context) -> FloatArray:
        if self.config.scale == "none" or values.size == 0:
            return std
        out = np.empty_like(std)
        for rows in group_rows(ctx.groups):
            out[rows] = std[rows] * _inverse_scale(_col_stats(values[rows])[2], self.config.eps)
        return out


class RunningConfig(NormalizerConfig):
    per: Literal["batch", "group"] = Field("batch", description="always batch (state is global)")
    eps: float = Field(1e-8, ge=0, description="std floor")
    center: bool = Field(True, description="subtract the running mean")

    @model_validator(mode="after")
    def _only_batch(self) -> RunningConfig:
        if self.per != "batch":
            raise ValueError("the running normaliser keeps one state for all samples; drop per")
        return self


class Running(Normalizer):
    """(r − running mean) / running std with Welford/Chan statistics over all calls so far.

    Each call first folds its batch into the statistics, then normalises with them. The state
    (count, mean, M2 per objective) is saved and restored with the pipeline.
    """

    method = "running"
    Config = RunningConfig
    summary = "(r − running mean) / running std across calls (Welford)"
    rowwise = True  # the statistics are global state, not the batch's

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.count: FloatArray | None = None
        self.mean: FloatArray | None = None
        self.m2: FloatArray | None = None

    def update(self, values: FloatArray) -> None:
        """Fold a batch into the running statistics (Chan et al.'s parallel update)."""
        v = check_values(values)
        k = v.shape[1]
        if self.count is None or self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = np.zeros(k), np.zeros(k), np.zeros(k)
        if self.count.shape[0] != k:
            raise AggregationError(
                f"running normaliser state has {self.count.shape[0]} objectives, got {k}"
            )
        nb, mb, sb = _col_stats(v)
        m2b = sb**2 * nb
        n = self.count + nb
        safe = np.maximum(n, 1.0)
        delta = mb - self.mean
        self.mean = np.where(n > 0, self.mean + delta * nb / safe, 0.0)
        self.m2 = self.m2 + m2b + delta**2 * self.count * nb / safe
        self.count = n

    @property
    def std(self) -> FloatArray:
        if self.count is None or self.m2 is None:
            raise AggregationError("the running normaliser has seen no data yet")
        return np.sqrt(self.m2 / np.maximum(self.count, 1.0))

    def transform(self, values: FloatArray) -> FloatArray:
        if values.size == 0:
            return values
        self.update(values)
        assert self.mean is not None
        std = self.std
        ok = std > self.config.eps
        centred = values - self.mean if self.config.center else values
        flat = np.where(np.isnan(values), np.nan, 0.0) if self.config.center else values
        return np.where(ok, centred / np.where(ok, std, 1.0), flat)

    def state_dict(self) -> dict[str, Any]:
        if self.count is None or self.mean is None or self.m2 is None:
            return {}
        return {"count": self.count.tolist(), "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state:
            self.count = self.mean = self.m2 = None
            return
        try:
            arrays = [np.asarray(state[key], dtype=np.float64) for key in ("count", "mean", "m2")]
        except KeyError as exc:
            raise AggregationError(
                f"running normaliser state lacks {exc}; expected count, mean and m2"
            ) from None
        if len({a.shape for a in arrays}) != 1:
            raise AggregationError("running normaliser state: count, mean, m2 differ in length")
        self.count, self.mean, self.m2 = arrays

    transforms_std = True

    def std_slope(self, values: FloatArray) -> FloatArray:
        # called after normalize, so the statistics are the ones that scaled this batch
        std = self.std
        ok = std > self.config.eps
        flat = 0.0 if self.config.center else 1.0
        return np.where(ok, 1.0 / np.where(ok, std, 1.0), flat)


@hookimpl
def register_normalizers(registry: NormalizerRegistry) -> None:
    for cls in (NoNormalizer, ZScore, Rank, MinMax, Clip, Group, Running):
        registry.add(cls)
