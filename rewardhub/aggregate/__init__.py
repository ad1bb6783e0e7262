"""The functional aggregation API over plain numpy arrays.

The pipeline's registered aggregators and normalisers are thin wrappers over these. Every
function treats higher as better and NaN as an abstained cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardhub._lazy import lazy_getattr
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    Context,
    Normalizer,
    PerSample,
    group_ids,
)

if TYPE_CHECKING:
    from rewardhub.aggregate.attribution import (
        binding_counts,
    )
    from rewardhub.aggregate.lexicographic_order import (
        lexicographic,
    )
    from rewardhub.aggregate.normalize import (
        clip,
        group_normalize,
        minmax,
        rank,
        zscore,
    )
    from rewardhub.aggregate.pareto import (
        HypervolumeEstimate,
        crowding_distance,
        hypervolume,
        hypervolume_contributions,
        hypervolume_mc,
        nondominated_sort,
        pareto_front,
        pareto_scores,
    )
    from rewardhub.aggregate.robust import (
        robust_objective,
        robust_weights,
        robust_weights_batched,
    )
    from rewardhub.aggregate.scalarize import (
        directional,
        maxmin,
        smooth_tchebycheff,
        softmin,
        tchebycheff,
        weighted_sum,
    )
    from rewardhub.aggregate.uncertainty import (
        ensemble_stats,
        lcb,
        uwo,
        wco,
    )

# the functional API loads on first use, so `import rewardhub` stays fast
_LAZY = {
    "binding_counts": "rewardhub.aggregate.attribution",
    "lexicographic": "rewardhub.aggregate.lexicographic_order",
    "clip": "rewardhub.aggregate.normalize",
    "group_normalize": "rewardhub.aggregate.normalize",
    "minmax": "rewardhub.aggregate.normalize",
    "rank": "rewardhub.aggregate.normalize",
    "zscore": "rewardhub.aggregate.normalize",
    "HypervolumeEstimate": "rewardhub.aggregate.pareto",
    "crowding_distance": "rewardhub.aggregate.pareto",
    "hypervolume": "rewardhub.aggregate.pareto",
    "hypervolume_contributions": "rewardhub.aggregate.pareto",
    "hypervolume_mc": "rewardhub.aggregate.pareto",
    "nondominated_sort": "rewardhub.aggregate.pareto",
    "pareto_front": "rewardhub.aggregate.pareto",
    "pareto_scores": "rewardhub.aggregate.pareto",
    "robust_objective": "rewardhub.aggregate.robust",
    "robust_weights": "rewardhub.aggregate.robust",
    "robust_weights_batched": "rewardhub.aggregate.robust",
    "directional": "rewardhub.aggregate.scalarize",
    "maxmin": "rewardhub.aggregate.scalarize",
    "smooth_tchebycheff": "rewardhub.aggregate.scalarize",
    "softmin": "rewardhub.aggregate.scalarize",
    "tchebycheff": "rewardhub.aggregate.scalarize",
    "weighted_sum": "rewardhub.aggregate.scalarize",
    "ensemble_stats": "rewardhub.aggregate.uncertainty",
    "lcb": "rewardhub.aggregate.uncertainty",
    "uwo": "rewardhub.aggregate.uncertainty",
    "wco": "rewardhub.aggregate.uncertainty",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "Aggregation",
    "Aggregator",
    "Context",
    "HypervolumeEstimate",
    "Normalizer",
    "PerSample",
    "binding_counts",
    "clip",
    "crowding_distance",
    "directional",
    "ensemble_stats",
    "group_ids",
    "group_normalize",
    "hypervolume",
    "hypervolume_contributions",
    "hypervolume_mc",
    "lcb",
    "lexicographic",
    "maxmin",
    "minmax",
    "nondominated_sort",
    "pareto_front",
    "pareto_scores",
    "rank",
    "robust_objective",
    "robust_weights",
    "robust_weights_batched",
    "smooth_tchebycheff",
    "softmin",
    "tchebycheff",
    "uwo",
    "wco",
    "weighted_sum",
    "zscore",
]
