"""Robust weights (RMOD): hand-worked optimum, KKT conditions, cross-check against cvxpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.aggregate import robust_objective, robust_weights
from rewardhub.aggregate.robust import Robust


def test_two_symmetric_candidates_by_hand() -> None:
    # values (1, 0) and (0, 1): f(w) = λ log((e^{w1/λ} + e^{w2/λ})/2) is smallest at w = (½, ½)
    w = robust_weights([[1.0, 0.0], [0.0, 1.0]], lam=0.7)
    assert w.tolist() == pytest.approx([0.5, 0.5], abs=1e-9)
    assert robust_objective([[1.0, 0.0], [0.0, 1.0]], w, 0.7) == pytest.approx(0.5)


def test_single_candidate_puts_all_weight_on_its_worst_objective() -> None:
    # K = 1: f(w) = v·w, minimised at the vertex of the smallest objective
    assert robust_weights([[3.0, -1.0, 2.0]]).tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_dominated_objective_gets_all_weight() -> None:
    # objective 1 is below objective 0 for every candidate: the worst case is all on it
    v = [[2.0, 1.0], [3.0, 0.5], [5.0, 0.0]]
    assert robust_weights(v, lam=0.5).tolist() == pytest.approx([0.0, 1.0], abs=1e-9)


def test_kkt_conditions_on_random_instances() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(2, 9))
        v = rng.normal(size=(int(rng.integers(1, 40)), m))
        lam = float(10 ** rng.uniform(-1, 1))
        w = robust_weights(v, lam)
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
        s = v @ w / lam
        p = np.exp(s - s.max())
        g = v.T @ (p / p.sum())
        mu = g[w > 1e-9].mean()
        assert np.abs(g[w > 1e-9] - mu).max() < 1e-6
        assert (g[w <= 1e-9] >= mu - 1e-6).all()


@pytest.mark.slow
def test_matches_cvxpy_reference() -> None:
    rng = np.random.default_rng(1)
    for _ in range(25):
        m = int(rng.integers(2, 9))
        v = rng.normal(size=(int(rng.integers(m, 40)), m))
        lam = float(10 ** rng.uniform(-0.5, 0.5))
        ours = robust_weights(v, lam)
        ref = robust_weights(v, lam, solver="cvxpy")
        assert np.abs(ours - ref).max() < 1e-4
        f_ours, f_ref = robust_objective(v, ours, lam), robust_objective(v, ref, lam)
        assert abs(f_ours - f_ref) < 1e-6
        assert f_ours <= f_ref + 1e-12  # never worse than the reference


def test_bad_inputs() -> None:
    with pytest.raises(rh.AggregationError, match="NaN"):
        robust_weights([[1.0, np.nan]])
    with pytest.raises(rh.AggregationError, match="lam must be"):
        robust_weights([[1.0, 2.0]], lam=0.0)
    with pytest.raises(rh.AggregationError, match="empty"):
        robust_weights(np.zeros((0, 2)))
    with pytest.raises(rh.AggregationError, match="unknown solver"):
        robust_weights([[1.0, 2.0]], solver="nope")  # type: ignore[arg-type]
    assert robust_weights([[5.0]]).tolist() == [1.0]


def test_aggregator_per_group_with_attribution_and_nan() -> None:
    names = ("a", "b")
    vals = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [3.0, 0.5], [np.nan, np.nan]])
    samples = [rh.Sample(prompt=p, completion=str(i)) for i, p in enumerate("xxyyy")]
    agg = Robust({"lam": 0.5}, names).aggregate(vals, rh.Context(objectives=names, samples=samples))
    # group x is symmetric → w = (½, ½); group y: objective b is always the worse → w = (0, 1)
    assert agg.total[:2].tolist() == pytest.approx([0.5, 0.5])
    assert agg.total[2:4].tolist() == pytest.approx([1.0, 0.5], abs=1e-8)
    assert math.isnan(agg.total[4])
    per = agg.diagnostics["per_sample"]
    assert per[0]["weights"] == pytest.approx({"a": 0.5, "b": 0.5})
    assert per[2]["weights"]["b"] == pytest.approx(1.0)
    assert per[3]["contributions"]["b"] == pytest.approx(0.5, abs=1e-8)
