"""Normalisers: hand-worked values, zero variance, NaN, per group, running state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rewardhub as rh
from rewardhub.aggregate import clip, group_normalize, minmax, rank, zscore
from rewardhub.aggregate.normalize import Clip, Group, MinMax, Rank, Running, ZScore

NAMES = ("a", "b")


def grouped(groups: list[str]) -> rh.Context:
    samples = [rh.Sample(prompt=g, completion=str(i)) for i, g in enumerate(groups)]
    return rh.Context(objectives=NAMES, samples=samples)


def test_registered_normalizers() -> None:
    names = rh.Hub(entry_points=False).normalizers.names()
    assert {"none", "zscore", "rank", "minmax", "clip", "running", "group"} <= set(names)


def test_zscore_by_hand() -> None:
    out = zscore([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0]])
    assert out[:2, 0].tolist() == [-1.0, 1.0]  # mean 2, std 1
    assert math.isnan(out[2, 0])
    assert out[:, 1].tolist() == [0.0, 0.0, 0.0]  # constant column → 0, not NaN


def test_rank_ties_averaged() -> None:
    out = rank([[3.0], [1.0], [3.0], [2.0], [np.nan]])
    # sorted: 1 (pos 0), 2 (pos 1), 3, 3 (pos 2.5 on average) → / 3
    assert out[:4, 0].tolist() == [2.5 / 3, 0.0, 2.5 / 3, 1 / 3]
    assert math.isnan(out[4, 0])
    assert rank([[7.0], [7.0]])[:, 0].tolist() == [0.5, 0.5]
    assert rank([[7.0]])[0, 0] == 0.5


def test_minmax_and_clip() -> None:
    assert minmax([[0.0, 1.0], [5.0, 1.0], [10.0, 1.0]]).tolist() == [
        [0.0, 0.5],
        [0.5, 0.5],
        [1.0, 0.5],
    ]
    assert clip([[-2.0, 5.0]], -1.0, [1.0, 3.0]).tolist() == [[-1.0, 3.0]]
    with pytest.raises(rh.AggregationError, match="low > high"):
        clip([[0.0]], 1.0, 0.0)


def test_group_normalize_gdpo_by_hand() -> None:
    vals = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 2.0], [5.0, 4.0], [9.0, 1.0]])
    g = [0, 0, 1, 1, 2]
    out = group_normalize(vals, g)
    assert out[:2, 0].tolist() == [-1.0, 1.0]
    assert out[2:4, 0].tolist() == [0.0, 0.0]  # zero variance within the group → 0
    assert out[2:4, 1].tolist() == [-1.0, 1.0]
    assert out[4].tolist() == [0.0, 0.0]  # a group of one
    centred = group_normalize(vals, g, scale="none")
    assert centred[:2, 0].tolist() == [-1.0, 1.0]
    assert centred[2:4, 1].tolist() == [-1.0, 1.0]


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)), elements=st.floats(-1e3, 1e3)),
    st.data(),
)
def test_group_normalize_matches_per_group_zscore(v: np.ndarray, data: st.DataObject) -> None:
    g = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(v), max_size=len(v))))
    out = group_normalize(v, g)
    assert not np.isnan(out).any()
    for label in np.unique(g):
        rows = g == label
        assert out[rows] == pytest.approx(zscore(v[rows]), abs=1e-6)


def test_normalizers_per_group_and_batch() -> None:
    vals = np.array([[1.0, 0.0], [3.0, 2.0], [10.0, 0.0], [30.0, 0.0]])
    c = grouped(["x", "x", "y", "y"])
    assert ZScore({"per": "group"}).normalize(vals, c)[:, 0].tolist() == [-1.0, 1.0, -1.0, 1.0]
    assert Rank({}).normalize(vals, c)[:, 0].tolist() == [0.0, 1 / 3, 2 / 3, 1.0]
    assert MinMax({"per": "group"}).normalize(vals, c)[:, 1].tolist() == [0.0, 1.0, 0.5, 0.5]
    assert Group({}).normalize(vals, c)[:, 1].tolist() == [-1.0, 1.0, 0.0, 0.0]
    with pytest.raises(Exception, match="per group"):
        Group({"per": "batch"})


def test_group_uses_metadata_group_over_prompt() -> None:
    samples = [
        rh.Sample(prompt="same", completion="1", metadata={"group": 1}),
        rh.Sample(prompt="same", completion="2", metadata={"group": 2}),
    ]
    c = rh.Context(objectives=NAMES, samples=samples)
    out = Group({}).normalize(np.array([[1.0, 1.0], [5.0, 5.0]]), c)
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.0]]  # two groups of one


def test_group_without_samples_is_a_clear_error() -> None:
    with pytest.raises(rh.AggregationError, match="got no samples"):
        Group({}).normalize(np.ones((2, 2)), rh.Context(objectives=NAMES))


def test_clip_normalizer_per_objective_bounds() -> None:
    c = rh.Context(objectives=NAMES)
    out = Clip({"min": {"a": 0.0}, "max": 1.0}).normalize(np.array([[-1.0, -1.0], [2, 2]]), c)
    assert out.tolist() == [[0.0, -1.0], [1.0, 1.0]]
    with pytest.raises(rh.AggregationError, match="unknown objective"):
        Clip({"min": {"zz": 0.0}}).normalize(np.ones((1, 2)), c)


def test_running_welford_matches_all_data_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 2)) for n in (5, 1, 17)]
    batches[1][0, 1] = np.nan
    norm = Running({})
    c = rh.Context(objectives=NAMES)
    for b in batches:
        out = norm.normalize(b, c)
    everything = np.vstack(batches)
    mean = np.nanmean(everything, axis=0)
    std = np.nanstd(everything, axis=0)
    assert norm.mean == pytest.approx(mean)
    assert norm.std == pytest.approx(std)
    assert out == pytest.approx((batches[-1] - mean) / std)
    state = json.loads(json.dumps(norm.state_dict()))
    again = Running({})
    again.load_state_dict(state)
    nxt = rng.normal(size=(4, 2))
    assert again.normalize(nxt, c) == pytest.approx(norm.normalize(nxt, c))
    with pytest.raises(rh.AggregationError, match="lacks"):
        Running({}).load_state_dict({"count": [1.0]})


def test_running_first_batch_of_one_is_zero() -> None:
    out = Running({}).normalize(np.array([[4.0, np.nan]]), rh.Context(objectives=NAMES))
    assert out[0, 0] == 0.0 and math.isnan(out[0, 1])


@pytest.mark.parametrize("fn", [zscore, rank, minmax])
def test_bad_inputs(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    with pytest.raises(rh.AggregationError, match="inf"):
        f([[np.inf]])  # type: ignore[operator]
    with pytest.raises(rh.AggregationError, match="empty"):
        f(np.zeros((0, 2)))  # type: ignore[operator]
    assert np.isnan(f([[np.nan, np.nan]])).all()  # type: ignore[operator]
