"""Input checks shared by the functional aggregation API."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rewardhub.errors import AggregationError
from rewardhub.types import FloatArray


def check_values(
    values: npt.ArrayLike, name: str = "values", allow_empty: bool = False
) -> FloatArray:
    """``values`` as a float64 (n × k) matrix; NaN allowed (abstain), inf and bad shapes not.

    A 1-D array is n samples of one objective (n × 1), as :class:`RewardBatch` reads it; pass
    one sample's vector as a row, ``[[r1, r2, ...]]``.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise AggregationError(f"{name} must be a 2-D (n × k) array, got shape {arr.shape}")
    if not allow_empty and (arr.shape[0] == 0 or arr.shape[1] == 0):
        raise AggregationError(
            f"{name} is empty (shape {arr.shape}); pass at least one sample and one objective"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(arr.sum()):  # one cheap pass: no NaN and no inf
            return arr
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


def check_positive(value: float, name: str, hint: str = "") -> float:
    """``value`` as a float that must be finite and > 0."""
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise AggregationError(f"{name} must be a finite number > 0, got {value!r}{hint}")
    return v


def check_groups(groups: npt.ArrayLike | None, n: int) -> npt.NDArray[np.intp]:
    """Group labels as dense ids 0..G−1 (one group when ``None``)."""
    if groups is None:
        return np.zeros(n, dtype=np.intp)
    g = np.asarray(groups)
    if g.shape != (n,):
        raise AggregationError(f"groups must have one label per row ({n}), got shape {g.shape}")
    _, dense = np.unique(g, return_inverse=True)
    return dense.reshape(-1).astype(np.intp)


def sample_weight_matrix(
    base: FloatArray, objectives: Sequence[str], samples: Sequence[Any], n: int
) -> FloatArray:
    """(n × k) weights: ``base`` for every row, replaced by ``metadata["weights"]`` where a sample
    has it. A per-sample mapping is a full preference vector: objectives it omits get 0."""
    # a cheap membership test first: this runs on every call, and few samples carry weights
    metas = [getattr(s, "metadata", None) for s in samples]
    if not any(metas):  # the common case: no sample carries metadata at all
        return np.broadcast_to(base, (n, base.shape[0]))
    rows = [
        i
        for i, (s, m) in enumerate(zip(samples, metas))
        if m and "weights" in m and _sample_weights(s) is not None
    ]
    if not rows:
        return np.broadcast_to(base, (n, base.shape[0]))
    if len(samples) != n:
        raise AggregationError(f"got {len(samples)} samples for {n} rows of values")
    w = np.tile(base, (n, 1))
    for i in rows:
        w[i] = resolve_weights(
            _sample_weights(samples[i]), objectives, name=f"samples[{i}].metadata['weights']"
        )
    return w


def _sample_weights(sample: Any) -> Mapping[str, float] | None:
    meta = getattr(sample, "metadata", None) or {}
    w = meta.get("weights")
    if w is None:
        return None
    if not isinstance(w, Mapping):
        raise AggregationError(
            f"metadata['weights'] must be a mapping {{objective: weight}}, got {type(w).__name__}"
        )
    return w
