"""Scalarisers: turn a reward vector into one number per sample.

Every function takes an (n × k) matrix, higher is better, NaN = abstained (skipped: the result
uses the objectives present in that row; a row with none gives NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field

from rewardhub.aggregate._checks import (
    check_positive,
    check_values,
    resolve_weights,
    sample_weight_matrix,
)
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    AggregatorConfig,
    Context,
    PerSample,
)
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray, json_row

IntArray = npt.NDArray[np.intp]


def _weights_like(
    v: FloatArray, weights: npt.ArrayLike | None, name: str = "weights"
) -> FloatArray:
    """``weights`` broadcast to v's shape: None (ones), (k,) or (n × k)."""
    if weights is None:
        return np.broadcast_to(np.ones(v.shape[1]), v.shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1 and w.shape[0] == v.shape[1]:
        w = np.broadcast_to(w, v.shape)
    if w.shape != v.shape:
        raise AggregationError(
            f"{name} has shape {w.shape}; pass one weight per objective ({v.shape[1]},) "
            f"or one row per sample {v.shape}"
        )
    if not np.isfinite(w).all():
        raise AggregationError(f"{name} must be finite")
    return w


def _rescale(v: FloatArray, w: FloatArray) -> FloatArray:
    """Per row, total |w| / |w| over present cells (1 when nothing abstained, NaN if all did)."""
    present = ~np.isnan(v)
    wabs = np.abs(w)
    total_w = wabs.sum(axis=1)
    present_w = np.where(present, wabs, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale: FloatArray = total_w / present_w
    scale[~present.any(axis=1)] = math.nan
    return scale


_F64 = np.dtype(np.float64)


def weighted_sum(values: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> FloatArray:
    """Σ_i w_i r_i per row. ``weights`` is (k,) or per sample (n × k); default all ones.

    NaN cells are skipped and the remaining weights rescaled to the same total |w|, so a
    missing objective neither counts as 0 nor shrinks the reward. All-NaN rows give NaN.
    """
    # the hot path (a float64 matrix and one weight per column) costs one extra dot product
    # over the bare ``values @ weights``; anything else goes through the checks below
    if (
        type(values) is np.ndarray
        and type(weights) is np.ndarray
        and values.dtype is _F64
        and values.ndim == 2
        and weights.shape == (values.shape[1],)
        and values.shape[0]
    ):
        out: FloatArray = values @ weights
        if math.isfinite(out @ out):  # finite ⇒ no NaN or inf anywhere in the inputs
            return out
    v = check_values(values)
    w = _weights_like(v, weights)
    raw: FloatArray = np.where(np.isnan(v), 0.0, v * w).sum(axis=1)
    return raw * _rescale(v, w)


def _rowreduce(v: FloatArray, largest: bool) -> FloatArray:
    """Row max (or min) over present cells, NaN for an all-NaN row (fast for small k)."""
    op = np.fmax if largest else np.fmin
    if v.shape[1] > 32:
        out: FloatArray = op.reduce(v, axis=1)
        return out
    out = v[:, 0].copy()
    for j in range(1, v.shape[1]):
        op(out, v[:, j], out=out)
    return out


def _unit(direction: FloatArray, name: str = "direction") -> FloatArray:
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    if (norm == 0).any():
        raise AggregationError(f"{name} is the zero vector; give at least one non-zero weight")
    unit: FloatArray = direction / norm
    return unit


def directional(values: npt.ArrayLike, direction: npt.ArrayLike) -> FloatArray:
    """DPA's directional reward v·r with v = direction / ‖direction‖ (one or one per row).

    Wang et al. 2024, "Arithmetic Control of LLMs for Diverse User Preferences" (DPA).
    Abstained cells are skipped as in :func:`weighted_sum`.
    """
    v = check_values(values)
    return weighted_sum(v, _unit(_weights_like(v, direction, "direction")))


def _ideal(v: FloatArray, ideal: npt.ArrayLike | None) -> FloatArray:
    if ideal is None:
        best: FloatArray = np.fmax.reduce(v, axis=0)  # NaN only for an all-NaN column
        return best
    z = np.asarray(ideal, dtype=np.float64).reshape(-1)
    if z.shape[0] != v.shape[1] or not np.isfinite(z).all():
        raise AggregationError(
            f"ideal must be {v.shape[1]} finite numbers (one per objective), got {z.tolist()}"
        )
    return z


def _argbest(scores: FloatArray, largest: bool) -> tuple[FloatArray, IntArray]:
    """Max (or min) over present cells per row, with its column; all-NaN rows give NaN, −1."""
    nan = np.isnan(scores)
    fill = -np.inf if largest else np.inf
    filled = np.where(nan, fill, scores)
    idx = filled.argmax(axis=1) if largest else filled.argmin(axis=1)
    best = filled[np.arange(scores.shape[0]), idx]
    empty = nan.all(axis=1)
    best = np.where(empty, np.nan, best)
    return best, np.where(empty, -1, idx).astype(np.intp)


def _tchebycheff_gaps(
    values: npt.ArrayLike, weights: npt.ArrayLike | None, ideal: npt.ArrayLike | None
) -> FloatArray:
    v = check_values(values)
    return _weights_like(v, weights) * (_ideal(v, ideal) - v)


def tchebycheff(
    values: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    ideal: npt.ArrayLike | None = None,
) -> FloatArray:
    """Weighted Tchebycheff reward −max_i w_i (z*_i − r_i) (Miettinen 1999; higher is better).

    ``ideal`` z* defaults to the best value of each objective in the batch. The binding
    objective is the one with the largest weighted gap to the ideal.
    """
    return -_rowreduce(_tchebycheff_gaps(values, weights, ideal), largest=True)


def _smooth_terms(gaps: FloatArray, mu: float) -> tuple[FloatArray, FloatArray]:
    """mu·log Σ exp(g/mu) over present cells and its softmax weights (rows of NaN → NaN)."""
    top, _ = _argbest(gaps, largest=True)
    shifted = (gaps - np.where(np.isnan(top), 0.0, top)[:, None]) / mu
    e = np.where(np.isnan(gaps), 0.0, np.exp(np.where(np.isnan(shifted), -np.inf, shifted)))
    s = e.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lse = top + mu * np.log(s)
        soft = e / s[:, None]
    return lse, np.where(np.isnan(gaps), np.nan, soft)


def smooth_tchebycheff(
    values: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    ideal: npt.ArrayLike | None = None,
    mu: float = 0.1,
) -> FloatArray:
    """Smooth Tchebycheff reward −μ·log Σ_i exp(w_i (z*_i − r_i) / μ) (Lin et al. 2024, STCH).

    Tends to :func:`tchebycheff` as μ → 0; differentiable for μ > 0.
    """
    mu = check_positive(mu, "mu")
    return -_smooth_terms(_tchebycheff_gaps(values, weights, ideal), mu)[0]


def maxmin(values: npt.ArrayLike) -> FloatArray:
    """The smallest present objective per row: MaxMin-RLHF's egalitarian reward
    (Chakraborty et al. 2024). Normalise first so that objectives share a scale."""
    return _rowreduce(check_values(values), largest=False)


def _softmin_terms(v: FloatArray, tau: float) -> tuple[FloatArray, FloatArray]:
    """Softmin per row and its softmax weights exp(−r_i/τ) / Σ_j exp(−r_j/τ)."""
    low = _rowreduce(v, largest=False)
    x = (v - low[:, None]) / tau  # ≥ 0 on present cells, NaN where abstained
    if not np.isnan(low).any() and not np.isnan(x).any():
        k = float(v.shape[1])
        if x.max() < 0.5:  # large τ: expm1/log1p keep the digits that exp/log would lose
            em1 = np.expm1(-x)
            s1 = em1.sum(axis=1)
            return low - tau * np.log1p(s1 / k), (em1 + 1.0) / (s1 + k)[:, None]
        e = np.exp(-x)
        s = e.sum(axis=1)
        return low - tau * np.log(s / k), e / s[:, None]
    present = ~np.isnan(x)
    kk = present.sum(axis=1)
    em1 = np.where(present, np.expm1(-np.where(present, x, 0.0)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = low - tau * np.log1p(em1.sum(axis=1) / kk)
        soft = np.where(present, em1 + 1.0, np.nan) / (em1.sum(axis=1) + kk)[:, None]
    return total, soft


def softmin(values: npt.ArrayLike, tau: float = 1.0) -> FloatArray:
    """−τ·log Σ_i exp(−r_i/τ) + τ·log k over the k present objectives.

    Lies between the min and the mean of the row: τ → 0 gives :func:`maxmin`, τ → ∞ the mean.
    """
    tau = check_positive(tau, "tau", " (for tau → 0 use maxmin)")
    return _softmin_terms(check_values(values), tau)[0]


# -- registered aggregators -------------------------------------------------------------------


def _binding_name(names: Sequence[str], j: int) -> str | None:
    return names[j] if j >= 0 else None


class WeightedConfig(AggregatorConfig):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(
        default_factory=dict, description="weight per objective; objectives not named get 1"
    )


class _WeightedBase(Aggregator):
    """Shared weight resolution: spec → per call (``ctx.weights``) → per sample."""

    default_weight: float = 1.0

    def base_weights(self, ctx: Context) -> FloatArray:
        base = dict.fromkeys(ctx.objectives, self.default_weight)
        weights: Mapping[str, float] = getattr(self.config, "weights", None) or {}
        resolve_weights(weights, ctx.objectives, name="aggregate.weights")
        base.update(weights)
        if ctx.weights:
            base.update(resolve_weights_mapping(ctx.weights, ctx.objectives))
        return resolve_weights(base, ctx.objectives)

    def weight_matrix(self, values: FloatArray, ctx: Context) -> FloatArray:
        """(n × k) weights: metadata["weights"] of a sample overrides the spec and call."""
        return sample_weight_matrix(
            self.base_weights(ctx), ctx.objectives, ctx.samples, values.shape[0]
        )


def _contributions(values: FloatArray, w: FloatArray, names: Sequence[str]) -> PerSample:
    """Each objective's share of the total (w_i r_i, rescaled like the total when abstaining)."""
    scale = _rescale(values, w) if np.isnan(values).any() else np.ones(values.shape[0])
    contrib = values * w * scale[:, None]
    return PerSample(
        contrib.shape[0],
        lambda i: {"contributions": json_row(names, contrib[i].tolist())},
        no_binding=True,
    )


def _explain_binding(
    names: Sequence[str], idx: IntArray, key: str | None = None, table: FloatArray | None = None
) -> PerSample:
    """Per sample: the binding objective, plus one row of ``table`` under ``key``."""

    def build(i: int) -> dict[str, Any]:
        rec: dict[str, Any] = {"binding": _binding_name(names, int(idx[i]))}
        if key is not None and table is not None:
            rec[key] = json_row(names, table[i].tolist())
        return rec

    return PerSample(idx.shape[0], build, binding=(names, idx))


class Weighted(_WeightedBase):
    """Weighted sum of the objectives (weights from the spec, the call or the sample)."""

    method = "weighted"
    rowwise = True
    Config = WeightedConfig
    summary = "Σ w_i r_i; weights from spec, call or metadata['weights']"

    def weights_for(self, ctx: Context) -> FloatArray:
        return self.base_weights(ctx)

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        w = self.weight_matrix(values, ctx)
        total = weighted_sum(values, w)
        return Aggregation(
            total,
            {
                "method": self.method,
                "weights": dict(zip(ctx.objectives, self.base_weights(ctx).tolist())),
                "per_sample": _contributions(values, w, ctx.objectives),
            },
        )


class DirectionalConfig(AggregatorConfig):
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="preference direction (normalised to unit length); objectives not named get 1",
    )


class Directional(_WeightedBase):
    """DPA: reward = v·r with v the unit preference direction (spec, call or sample)."""

    method = "directional"
    rowwise = True
    Config = DirectionalConfig
    summary = "v·r with ‖v‖ = 1 (Directional Preference Alignment)"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = _unit(self.weight_matrix(values, ctx), "the preference direction")
        return Aggregation(
            weighted_sum(values, v),
            {
                "method": self.method,
                "direction": dict(zip(ctx.objectives, _unit(self.base_weights(ctx)).tolist())),
                "per_sample": _contributions(values, v, ctx.objectives),
            },
        )


class TchebycheffConfig(AggregatorConfig):
    weights: dict[str, float] = Field(
        default_factory=dict, description="weight per objective; objectives not named get 1"
    )
    ideal: dict[str, float] | None = Field(
        None, description="ideal point z* per objective (default: the batch's best value)"
    )


def _ideal_vector(ideal: Mapping[str, float] | None, ctx: Context) -> FloatArray | None:
    if ideal is None:
        return None
    missing = [o for o in ctx.objectives if o not in ideal]
    if missing:
        raise AggregationError(
            f"ideal lacks objective(s) {missing}; give a value for each of {list(ctx.objectives)}"
        )
    return resolve_weights(ideal, ctx.objectives, name="ideal")


def _without_ideal(self: Aggregator) -> str | None:
    if self.config.ideal is None:
        return "without an 'ideal' (uses the batch's best)"
    return None


class Tchebycheff(_WeightedBase):
    """−max_i w_i (z*_i − r_i): the worst weighted shortfall from the ideal point."""

    method = "tchebycheff"
    rowwise = True
    Config = TchebycheffConfig
    summary = "−max_i w_i (z*_i − r_i) (weighted Tchebycheff)"
    batch_relative = _without_ideal

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        w = self.weight_matrix(values, ctx)
        gaps = _tchebycheff_gaps(values, w, _ideal_vector(self.config.ideal, ctx))
        worst, idx = _argbest(gaps, largest=True)
        names = ctx.objectives
        per = _explain_binding(names, idx, "gaps", gaps)
        return Aggregation(-worst, {"method": self.method, "per_sample": per})


class SmoothTchebycheffConfig(TchebycheffConfig):
    mu: float = Field(0.1, gt=0, description="smoothing temperature μ (→ 0: Tchebycheff)")


class SmoothTchebycheff(_WeightedBase):
    """−μ·log Σ exp(w_i (z*_i − r_i)/μ): a differentiable Tchebycheff (Lin et al. 2024)."""

    method = "smooth_tchebycheff"
    rowwise = True
    Config = SmoothTchebycheffConfig
    summary = "−μ log Σ exp(w_i (z*_i − r_i)/μ) (smooth Tchebycheff)"
    batch_relative = _without_ideal

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        w = self.weight_matrix(values, ctx)
        gaps = _tchebycheff_gaps(values, w, _ideal_vector(self.config.ideal, ctx))
        lse, soft = _smooth_terms(gaps, self.config.mu)
        _, idx = _argbest(gaps, largest=True)
        names = ctx.objectives
        per = _explain_binding(names, idx, "softmax", soft)
        return Aggregation(-lse, {"method": self.method, "per_sample": per})


class MaxMin(Aggregator):
    """The worst objective per sample (MaxMin-RLHF's egalitarian reward)."""

    method = "maxmin"
    rowwise = True
    summary = "min_i r_i (egalitarian; normalise first)"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        low, idx = _argbest(check_values(values), largest=False)
        per = _explain_binding(ctx.objectives, idx)
        return Aggregation(low, {"method": self.method, "per_sample": per})


class SoftminConfig(AggregatorConfig):
    tau: float = Field(1.0, gt=0, description="temperature τ (→ 0: min, → ∞: mean)")


class Softmin(Aggregator):
    """−τ·log mean_i exp(−r_i/τ): between the min (τ → 0) and the mean (τ → ∞)."""

    method = "softmin"
    rowwise = True
    Config = SoftminConfig
    summary = "−τ log Σ exp(−r_i/τ) + τ log k (between min and mean)"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        total, soft = _softmin_terms(v, self.config.tau)
        _, idx = _argbest(v, largest=False)
        names = ctx.objectives
        per = _explain_binding(names, idx, "softmax", soft)
        return Aggregation(total, {"method": self.method, "per_sample": per})


def resolve_weights_mapping(
    weights: Mapping[str, float], objectives: tuple[str, ...]
) -> dict[str, float]:
    """Check per-call weight names against the objectives (clear error on a typo)."""
    resolve_weights(weights, objectives, name="weights")
    return dict(weights)


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    for cls in (Weighted, Directional, Tchebycheff, SmoothTchebycheff, MaxMin, Softmin):
        registry.add(cls)
