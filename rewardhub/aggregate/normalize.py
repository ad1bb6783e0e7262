"""Normalisers: rescale each objective before aggregation (batch-wide or per group)."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from rewardhub.aggregate._checks import check_values
from rewardhub.aggregate.base import Normalizer
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import NormalizerRegistry
from rewardhub.types import FloatArray


def zscore(values: npt.ArrayLike, eps: float = 1e-8) -> FloatArray:
    """(r − mean) / std per column, NaN-aware. A constant column becomes 0, never NaN."""
    v = check_values(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean of empty slice
        mean = np.nanmean(v, axis=0)
        std = np.nanstd(v, axis=0)
    centred = v - mean
    return np.where(std > eps, centred / np.where(std > eps, std, 1.0), np.where(np.isnan(v), np.nan, 0.0))


class NoNormalizer(Normalizer):
    """Leave values as the sources produced them."""

    method = "none"

    def transform(self, values: FloatArray) -> FloatArray:
        return values


class ZScore(Normalizer):
    """Standardise each objective to mean 0, std 1 (over the batch, or per group)."""

    method = "zscore"

    def transform(self, values: FloatArray) -> FloatArray:
        return zscore(values) if values.size else values


@hookimpl
def register_normalizers(registry: NormalizerRegistry) -> None:
    registry.add(NoNormalizer)
    registry.add(ZScore)
