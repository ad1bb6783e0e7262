"""Rules every aggregation entry point keeps: one reading of 1-D input, per-call weights only
where they mean something, abstained constraints fail closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rewardhub as rh
from rewardhub import aggregate as agg

X = np.array([3.0, 1.0, 2.0, 5.0])

# every public function of rewardhub.aggregate that takes a value matrix
ONE_D: list[tuple[str, Callable[[Any], Any]]] = [
    ("weighted_sum", lambda v: agg.weighted_sum(v)),
    ("weighted_sum(w)", lambda v: agg.weighted_sum(v, np.array([2.0]))),
    ("directional", lambda v: agg.directional(v, [1.0])),
    ("tchebycheff", lambda v: agg.tchebycheff(v)),
    ("smooth_tchebycheff", lambda v: agg.smooth_tchebycheff(v)),
    ("maxmin", lambda v: agg.maxmin(v)),
    ("softmin", lambda v: agg.softmin(v)),
    ("zscore", lambda v: agg.zscore(v)),
    ("rank", lambda v: agg.rank(v)),
    ("minmax", lambda v: agg.minmax(v)),
    ("clip", lambda v: agg.clip(v, 1.5, 4.0)),
    ("group_normalize", lambda v: agg.group_normalize(v, [0, 0, 1, 1])),
    ("robust_weights", lambda v: agg.robust_weights(v)),
    ("robust_objective", lambda v: agg.robust_objective(v, [1.0])),
    ("nondominated_sort", lambda v: agg.nondominated_sort(v)),
    ("pareto_front", lambda v: agg.pareto_front(v)),
    ("crowding_distance", lambda v: agg.crowding_distance(v)),
    ("pareto_scores", lambda v: agg.pareto_scores(v)[0]),
    ("hypervolume", lambda v: agg.hypervolume(v, [0.0])),
    ("hypervolume_contributions", lambda v: agg.hypervolume_contributions(v, [0.0])),
    ("lexicographic", lambda v: agg.lexicographic(v)[0]),
]


@pytest.mark.parametrize(("name", "fn"), ONE_D, ids=[n for n, _ in ONE_D])
def test_one_d_input_is_n_samples_of_one_objective(name: str, fn: Callable[[Any], Any]) -> None:
    as_column = fn(X.reshape(-1, 1))
    assert np.array_equal(np.asarray(fn(X)), np.asarray(as_column), equal_nan=True), name
    assert np.asarray(fn(X.tolist())).shape == np.asarray(as_column).shape


def test_one_d_examples_from_the_issue() -> None:
    assert agg.zscore([1.0, 2.0, 3.0]).ravel() == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert agg.rank([1.0, 2.0, 3.0]).ravel().tolist() == [0.0, 0.5, 1.0]
    assert agg.nondominated_sort([1.0, 3.0, 2.0]).tolist() == [2, 0, 1]
    assert agg.hypervolume([1.0, 3.0, 2.0], [0.0]) == 3.0
    # one sample's vector is a row
    assert agg.maxmin([[1.0, 3.0, 2.0]]).tolist() == [1.0]


NO_WEIGHTS = [
    {"method": "maxmin"},
    {"method": "softmin"},
    {"method": "pareto"},
    {"method": "robust"},
    {"method": "lexicographic"},
    {
        "method": "gate",
        "base": {"method": "maxmin"},
        "gates": [{"objective": "harmless", "min": 0}],
    },
]


@pytest.mark.parametrize("aggregate", NO_WEIGHTS, ids=[a["method"] for a in NO_WEIGHTS])
def test_per_call_weights_to_an_aggregator_without_weights_raise(aggregate: dict[str, Any]) -> None:
    from tests.test_aggregate_constraints import pipeline, samples

    rows: list[list[float | None]] = [[1.0, 2.0], [3.0, 0.5]]
    with pipeline(aggregate) as pipe:
        pipe.score(samples(rows))  # fine without weights
        with pytest.raises(
            rh.AggregationError, match=f"aggregator {aggregate['method']!r} takes no weights"
        ):
            pipe.score(samples(rows), weights={"helpful": 2.0})


@pytest.mark.parametrize(
    "aggregate",
    [
        {"method": "weighted"},
        {"method": "uwo", "lam": 0.0},
        {"method": "lcb", "k": 0.0},
        {"method": "lagrangian", "constraints": [{"objective": "harmless"}], "lambda_init": 0.0},
        {
            "method": "gate",
            "base": {"method": "weighted"},
            "gates": [{"objective": "harmless", "min": 0}],
        },
    ],
    ids=["weighted", "uwo", "lcb", "lagrangian", "gate(weighted)"],
)
def test_per_call_weights_are_used_where_taken(aggregate: dict[str, Any]) -> None:
    from tests.test_aggregate_constraints import pipeline, samples

    rows: list[list[float | None]] = [[1.0, 2.0], [3.0, 0.5]]
    std = [[0.0, 0.0], [0.0, 0.0]]
    with pipeline(aggregate) as pipe:
        plain = pipe.score(samples(rows, std)).total
        heavy = pipe.score(samples(rows, std), weights={"helpful": 3.0}).total
    # helpful weighs 3: the totals move by 2 × helpful (uwo/lcb/lagrangian read them too)
    assert (heavy - plain).tolist() == pytest.approx([2.0, 6.0])
