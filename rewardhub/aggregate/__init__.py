"""The functional aggregation API over plain numpy arrays.

The pipeline's registered aggregators and normalisers are thin wrappers over these.
"""

from __future__ import annotations

from rewardhub.aggregate.base import Aggregation, Aggregator, Context, Normalizer, group_ids
from rewardhub.aggregate.normalize import zscore
from rewardhub.aggregate.scalarize import weighted_sum

__all__ = [
    "Aggregation",
    "Aggregator",
    "Context",
    "Normalizer",
    "group_ids",
    "weighted_sum",
    "zscore",
]
