"""Pareto tools: hand-worked fronts, properties, and cross-checks against pymoo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rewardhub as rh
from rewardhub.aggregate import (
    crowding_distance,
    hypervolume,
    hypervolume_contributions,
    hypervolume_mc,
    nondominated_sort,
    pareto_front,
    pareto_scores,
)
from rewardhub.aggregate import pareto as P
from rewardhub.aggregate.pareto import Pareto

small = st.integers(1, 4).flatmap(
    lambda k: arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.just(k)),
        elements=st.integers(0, 4).map(float),  # a coarse grid: many ties and duplicates
    )
)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((a >= b).all() and (a > b).any())


# -- hand-worked ------------------------------------------------------------------------------


def test_nondominated_sort_by_hand() -> None:
    pts = [[1, 1], [2, 0], [0, 2], [0, 0], [1, 1], [0.5, 0.5], [-1, 3]]
    # front 0: (1,1) twice (duplicates share), (2,0), (0,2), (−1,3); then (0.5,0.5); then (0,0)
    assert nondominated_sort(pts).tolist() == [0, 0, 0, 2, 0, 1, 0]
    assert pareto_front(pts).tolist() == [True, True, True, False, True, False, True]


def test_one_objective_and_one_sample() -> None:
    assert nondominated_sort([[3.0], [1.0], [3.0], [2.0]]).tolist() == [0, 2, 0, 1]
    assert nondominated_sort([[1.0, 2.0]]).tolist() == [0]
    assert crowding_distance([[1.0, 2.0]]).tolist() == [math.inf]


def test_nan_counts_as_worst() -> None:
    pts = [[1.0, np.nan], [0.0, 0.0], [1.0, 0.0]]
    # (1, NaN) is dominated by (1, 0); (0, 0) too
    assert nondominated_sort(pts).tolist() == [1, 1, 0]


def test_groups_are_ranked_separately_in_one_call() -> None:
    pts = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    g = ["x", "x", "y", "y", "z"]
    assert nondominated_sort(pts, g).tolist() == [0, 1, 1, 0, 0]
    with pytest.raises(rh.AggregationError, match="one label per row"):
        nondominated_sort(pts, [0, 1])


def test_large_groups_use_the_per_group_path() -> None:
    rng = np.random.default_rng(3)
    pts = rng.random((300, 3))
    g = np.repeat([0, 1], 150)  # groups larger than the batched limit
    assert P.BATCHED_GROUP_MAX < 150
    ranks = nondominated_sort(pts, g)
    assert (ranks[:150] == nondominated_sort(pts[:150])).all()
    assert (ranks[150:] == nondominated_sort(pts[150:])).all()


def test_crowding_by_hand() -> None:
    pts = [[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]]
    # objective 0 range 4: point 1 gap (3 − 0)/4; point 2 gap (4 − 1)/4
    # objective 1 range 4: point 1 gap (4 − 1)/4; point 2 gap (2 − 0)/4; averaged over 2
    cd = crowding_distance(pts)
    assert cd[0] == cd[3] == math.inf
    assert cd[1] == pytest.approx((0.75 + 0.75) / 2)
    assert cd[2] == pytest.approx((0.75 + 0.5) / 2)
    assert crowding_distance([[1.0, 1.0], [2.0, 2.0]]).tolist() == [math.inf, math.inf]


def test_hypervolume_by_hand() -> None:
    # 2-D staircase (3,1), (2,2), (1,3) over ref 0: 3 + 2·... = 1·3 + 1·2 + 1·1 = 6
    assert hypervolume([[3, 1], [2, 2], [1, 3]], [0, 0]) == pytest.approx(6.0)
    # one point is its box, in any dimension
    for k in (1, 2, 3, 4, 5):
        assert hypervolume([np.arange(1, k + 1)], np.zeros(k)) == pytest.approx(math.factorial(k))
    # points not beating the reference add nothing; NaN rows are ignored
    assert hypervolume([[1.0, -1.0], [np.nan, 9.0]], [0.0, 0.0]) == 0.0
    # 3-D: two unit-overlapping boxes 2·2·1 + 1·1·2 − 1·1·1
    assert hypervolume([[2, 2, 1], [1, 1, 2]], [0, 0, 0]) == pytest.approx(5.0)
    with pytest.raises(rh.AggregationError, match="ref must be 2"):
        hypervolume([[1.0, 1.0]], [0.0])


def test_hypervolume_contributions_by_hand() -> None:
    pts = [[3, 1], [2, 2], [1, 3], [1, 1], [2, 2], [np.nan, 1]]
    c = hypervolume_contributions(pts, [0, 0])
    # the ends add their own 1×1 corner; (2,2) is duplicated so neither copy is exclusive
    assert c[:5].tolist() == pytest.approx([1.0, 0.0, 1.0, 0.0, 0.0])
    assert math.isnan(c[5])


def test_hypervolume_monte_carlo_beyond_the_limit() -> None:
    rng = np.random.default_rng(0)
    pts = rng.random((60, 4))
    exact = hypervolume(pts, np.zeros(4))
    est = hypervolume_mc(pts, np.zeros(4), samples=200_000, seed=1)
    assert abs(est.value - exact) < 5 * est.stderr
    assert est.stderr > 0
    assert hypervolume(pts, np.zeros(4), method="mc", samples=200_000, seed=1) == est.value


def test_numpy_fallbacks_match_moocore() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 4):
        pts = rng.integers(0, 6, size=(120, k)).astype(float)
        ranks = nondominated_sort(pts)
        assert (P._nds_peel_chunked(pts) == ranks).all()
        assert (P._peel(P._dominance(pts[None]), np.ones((1, 120), bool))[0] == ranks).all()
        front = pts[ranks == 0]
        assert P._hv_slicing(front, np.full(k, -1.0)) == pytest.approx(
            hypervolume(pts, np.full(k, -1.0)), rel=1e-12
        )


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(small)
def test_front_is_exactly_the_nondominated_points(v: np.ndarray) -> None:
    front = pareto_front(v)
    ranks = nondominated_sort(v)
    for i in range(len(v)):
        dominated = any(dominates(v[j], v[i]) for j in range(len(v)))
        assert front[i] == (not dominated)
        # a point of front r > 0 is dominated by one of front r − 1, never by its own front
        if ranks[i] > 0:
            assert any(dominates(v[j], v[i]) for j in np.flatnonzero(ranks == ranks[i] - 1))
        assert not any(dominates(v[j], v[i]) for j in np.flatnonzero(ranks == ranks[i]))


@settings(max_examples=60, deadline=None)
@given(small, st.data())
def test_hypervolume_monotone_when_adding_points(v: np.ndarray, data: st.DataObject) -> None:
    ref = np.full(v.shape[1], -1.0)
    extra = data.draw(arrays(np.float64, (1, v.shape[1]), elements=st.integers(-2, 5).map(float)))
    before = hypervolume(v, ref)
    after = hypervolume(np.vstack([v, extra]), ref)
    assert after >= before - 1e-12
    one = v[:1]
    assert hypervolume(one, ref) == pytest.approx(float(np.prod(one[0] - ref)))


# -- cross-checks against pymoo (a test dependency) -------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 4])
def test_ranks_crowding_and_hypervolume_match_pymoo(k: int) -> None:
    nds_mod = pytest.importorskip("pymoo.util.nds.non_dominated_sorting")
    from pymoo.indicators.hv import Hypervolume
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    rng = np.random.default_rng(k)
    for trial in range(5):
        pts = rng.random((200, k))
        if trial % 2:
            pts = np.round(pts, 1)  # ties and duplicates
        # pymoo minimises: hand it the negated values
        _, prank = nds_mod.NonDominatedSorting().do(-pts, return_rank=True)
        assert nondominated_sort(pts).tolist() == prank.tolist()
        front = pts[pareto_front(pts)]
        if len(front) > 2:
            assert crowding_distance(front) == pytest.approx(
                calc_crowding_distance(front), rel=1e-9, abs=1e-12
            )
        ref = np.zeros(k)
        expect = Hypervolume(ref_point=-ref).do(-pts)
        assert hypervolume(pts, ref) == pytest.approx(expect, rel=1e-9)


def test_grouped_ranks_match_pymoo_per_group() -> None:
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rng = np.random.default_rng(7)
    pts = np.round(rng.random((16 * 40, 3)), 1)
    g = np.repeat(np.arange(40), 16)
    ranks = nondominated_sort(pts, g)
    for label in range(40):
        rows = g == label
        _, prank = NonDominatedSorting().do(-pts[rows], return_rank=True)
        assert ranks[rows].tolist() == prank.tolist()


# -- the pareto aggregator --------------------------------------------------------------------


def test_pareto_scores_by_hand() -> None:
    pts = np.array([[1, 1], [2, 0], [0, 2], [0, 0], [1, 1]], dtype=float)
    score, ranks, crowd = pareto_scores(pts)
    assert ranks.tolist() == [0, 0, 0, 1, 0]
    # front 0 (4 points): crowding (0.5, inf, inf, 0.5) → mid-ranks (1/6, 5/6, 5/6, 1/6);
    # two fronts: score = 1 − (rank + (1 − c)/2) / 2
    assert score.tolist() == pytest.approx([19 / 24, 23 / 24, 23 / 24, 3 / 8, 19 / 24])
    assert crowd[3] == math.inf


def test_pareto_aggregator_per_group_in_unit_interval() -> None:
    rng = np.random.default_rng(0)
    vals = rng.random((48, 3))
    vals[5] = np.nan
    samples = [rh.Sample(prompt=f"q{i // 16}", completion=str(i)) for i in range(48)]
    ctx = rh.Context(objectives=("a", "b", "c"), samples=samples)
    agg = Pareto({}, ("a", "b", "c")).aggregate(vals, ctx)
    t = agg.total
    assert math.isnan(t[5])
    ok = np.delete(t, 5)
    assert ((ok > 0) & (ok <= 1)).all()
    per = agg.diagnostics["per_sample"]
    ranks = nondominated_sort(vals, [i // 16 for i in range(48)])
    for i in range(48):
        assert per[i]["front"] == ranks[i]
    # a better front always scores higher within a group
    for gi in range(3):
        rows = [i for i in range(gi * 16, gi * 16 + 16) if i != 5]
        for i in rows:
            for j in rows:
                if ranks[i] < ranks[j]:
                    assert t[i] > t[j]


def test_pareto_aggregator_needs_samples_for_groups() -> None:
    with pytest.raises(rh.AggregationError, match="no samples"):
        Pareto({}, ("a",)).aggregate(np.ones((2, 1)), rh.Context(objectives=("a",)))
    out = Pareto({"scope": "batch"}, ("a",)).aggregate(
        np.array([[1.0], [2.0]]), rh.Context(objectives=("a",))
    )
    assert out.total[1] > out.total[0]
