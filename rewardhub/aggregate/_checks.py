"""Input checks shared by the functional aggregation API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from rewardhub.errors import AggregationError
from rewardhub.types import FloatArray


def check_values(values: npt.ArrayLike, name: str = "values", allow_empty: bool = False) -> FloatArray:
    """``values`` as a float64 (n × k) matrix; NaN allowed (abstain), inf and bad shapes not."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, 0)
    if arr.ndim != 2:
        raise AggregationError(f"{name} must be a 2-D (n × k) array, got shape {arr.shape}")
    if not allow_empty and (arr.shape[0] == 0 or arr.shape[1] == 0):
        raise AggregationError(
            f"{name} is empty (shape {arr.shape}); pass at least one sample and one objective"
        )
    if np.isinf(arr).any():
        bad = np.argwhere(np.isinf(arr))[0]
        raise AggregationError(
            f"{name} contains inf at row {bad[0]}, column {bad[1]}; rewards must be finite "
            "(use NaN to abstain)"
        )
    return arr


def resolve_weights(
    weights: npt.ArrayLike | Mapping[str, float] | None,
    objectives: Sequence[str] | int,
    name: str = "weights",
) -> FloatArray:
    """Weights as a (k,) array: from a mapping by objective name (missing → 0), an array, or
    ``None`` (all ones). Unknown objective names are an error listing the known ones."""
    names = [str(i) for i in range(objectives)] if isinstance(objectives, int) else list(objectives)
    k = len(names)
    if weights is None:
        return np.ones(k)
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise AggregationError(
                f"{name} name unknown objective(s) {unknown}; the objectives are {names}"
            )
        w = np.array([float(weights.get(o, 0.0)) for o in names])
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != k:
            raise AggregationError(f"{name} has {w.shape[0]} entries for {k} objectives")
    if not np.isfinite(w).all():
        raise AggregationError(f"{name} must be finite, got {w.tolist()}")
    return w
