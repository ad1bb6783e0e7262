"""Scalarisers: turn a reward vector into one number per sample."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field

from rewardhub.aggregate._checks import check_values, resolve_weights
from rewardhub.aggregate.base import Aggregation, Aggregator, AggregatorConfig, Context
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray


def weighted_sum(values: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> FloatArray:
    """Σ_i w_i r_i per row. ``weights`` is (k,) or per sample (n × k); default all ones.

    NaN cells are skipped and the remaining weights rescaled to the same total |w|, so a
    missing objective neither counts as 0 nor shrinks the reward. All-NaN rows give NaN.
    """
    v = check_values(values)
    w = np.broadcast_to(
        np.ones(v.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64), v.shape
    )
    present = ~np.isnan(v)
    if present.all():
        return np.einsum("ij,ij->i", v, w)
    wabs = np.abs(w)
    total_w = wabs.sum(axis=1)
    present_w = np.where(present, wabs, 0.0).sum(axis=1)
    raw = np.where(present, v * w, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = raw * (total_w / present_w)
    out[~present.any(axis=1)] = math.nan
    return out


class WeightedConfig(AggregatorConfig):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(
        default_factory=dict, description="weight per objective; objectives not named get 1"
    )


def _contributions(values: FloatArray, w: FloatArray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    contrib = values * w
    return [
        {"contributions": {o: (None if math.isnan(c) else float(c)) for o, c in zip(names, row)}}
        for row in contrib.tolist()
    ]


class Weighted(Aggregator):
    """Weighted sum of the objectives (weights from the spec, the call or the sample)."""

    method = "weighted"
    Config = WeightedConfig

    def weights_for(self, ctx: Context) -> FloatArray:
        base = {o: 1.0 for o in ctx.objectives}
        base.update(self.config.weights)
        if ctx.weights:
            base.update(resolve_weights_mapping(ctx.weights, ctx.objectives))
        return resolve_weights(base, ctx.objectives)

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        w = self.weights_for(ctx)
        total = weighted_sum(values, w)
        return Aggregation(
            total,
            {"method": self.method, "weights": dict(zip(ctx.objectives, w.tolist())),
             "per_sample": _contributions(values, w, ctx.objectives)},
        )


def resolve_weights_mapping(weights: Mapping[str, float], objectives: tuple[str, ...]) -> dict[str, float]:
    """Check per-call weight names against the objectives (clear error on a typo)."""
    resolve_weights(weights, objectives, name="weights")
    return dict(weights)


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Weighted)
