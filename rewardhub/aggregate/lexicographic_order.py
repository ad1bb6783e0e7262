"""Lexicographic aggregation with tolerances (thresholded lexicographic ordering, Gábor et al.
1998): objectives in priority order, each kept within a slack of its best before the next
one decides."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from rewardhub.aggregate._checks import check_groups, check_values
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    Context,
    PerSample,
    ScopedConfig,
)
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray

IntArray = npt.NDArray[np.intp]


def lexicographic(
    values: npt.ArrayLike,
    tolerances: npt.ArrayLike | float = 0.0,
    groups: npt.ArrayLike | None = None,
) -> tuple[FloatArray, IntArray]:
    """Lexicographic score per row (columns in priority order) and the stage that eliminated it.

    Within each group, stage j keeps the candidates with r_j ≥ max r_j − tol_j among those that
    survived stages 0..j−1. A row eliminated at stage j scores j + (r_j − min)/(max − min) over
    that stage's candidates (in [j, j+1)); a row surviving every stage scores k. An abstained
    cell eliminates the row at its stage with fraction 0. Stage is −1 for survivors.
    """
    v = check_values(values)
    n, k = v.shape
    tol = np.broadcast_to(np.asarray(tolerances, dtype=np.float64), (k,))
    if (tol < 0).any() or not np.isfinite(tol).all():
        raise AggregationError(f"tolerances must be finite and ≥ 0, got {tol.tolist()}")
    g = check_groups(groups, n)
    n_groups = int(g.max()) + 1
    alive = np.ones(n, dtype=bool)
    score = np.full(n, float(k))
    stage = np.full(n, -1, dtype=np.intp)
    for j in range(k):
        col = v[:, j]
        cand = alive & ~np.isnan(col)
        best = np.full(n_groups, -np.inf)
        low = np.full(n_groups, np.inf)
        np.maximum.at(best, g[cand], col[cand])
        np.minimum.at(low, g[cand], col[cand])
        keep = cand & (col >= best[g] - tol[j])
        out = alive & ~keep
        span = (best - low)[g]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(cand & (span > 0), (col - low[g]) / np.where(span > 0, span, 1), 0.0)
        score[out] = j + np.minimum(frac[out], np.nextafter(1.0, 0.0))
        stage[out] = j
        alive = keep
    return score, stage


class LexicographicConfig(ScopedConfig):
    order: list[str] | None = Field(
        None, description="objectives in priority order (default: the pipeline's order)"
    )
    tolerances: dict[str, float] = Field(
        default_factory=dict, description="slack per objective below its best (default 0)"
    )


class Lexicographic(Aggregator):
    """Priority order with slack: stage j keeps those within tol_j of the best r_j."""

    method = "lexicographic"
    Config = LexicographicConfig
    summary = "priority order with tolerances; score = stage reached + fraction"

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        names = ctx.objectives
        order = list(self.config.order or names)
        unknown = sorted(set(order) - set(names)) + sorted(set(self.config.tolerances) - set(names))
        if unknown:
            raise AggregationError(
                f"lexicographic names unknown objective(s) {unknown}; the objectives are "
                f"{list(names)}"
            )
        idx = [names.index(o) for o in order]
        tol = [float(self.config.tolerances.get(o, 0.0)) for o in order]
        groups = self.config.groups(ctx)
        v = check_values(values)
        score, stage = lexicographic(v[:, idx], tol, groups)
        score[np.isnan(v).all(axis=1)] = np.nan

        def explain(i: int) -> dict[str, Any]:
            s = int(stage[i])
            name = order[s] if s >= 0 else None
            return {"eliminated_by": name, "binding": name}

        per = PerSample(len(score), explain)
        return Aggregation(score, {"method": self.method, "order": order, "per_sample": per})


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Lexicographic)
