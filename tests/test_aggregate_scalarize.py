"""Scalarisers: hand-worked cases, limits, properties, NaN / inf / empty inputs, aggregators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rewardhub as rh
from rewardhub.aggregate import (
    directional,
    maxmin,
    smooth_tchebycheff,
    softmin,
    tchebycheff,
    weighted_sum,
)
from rewardhub.aggregate.scalarize import (
    Directional,
    MaxMin,
    SmoothTchebycheff,
    Softmin,
    Tchebycheff,
    Weighted,
)

NAMES = ("a", "b", "c")
V = np.array([[1.0, 2.0, 3.0], [0.0, np.nan, 4.0], [np.nan, np.nan, np.nan]])

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
matrices = st.integers(1, 6).flatmap(
    lambda k: arrays(np.float64, st.tuples(st.integers(1, 8), st.just(k)), elements=finite)
)


def ctx(n: int = 3, **kw: object) -> rh.Context:
    samples = [rh.Sample(prompt=f"p{i}", completion="x") for i in range(n)]
    return rh.Context(objectives=NAMES, samples=kw.pop("samples", samples), **kw)  # type: ignore[arg-type]


# -- functional API: hand-worked -------------------------------------------------------------


def test_weighted_sum_by_hand_and_abstain_rescaling() -> None:
    out = weighted_sum(V, [1.0, 1.0, 2.0])
    # row 0: 1 + 2 + 6; row 1: (0 + 8) scaled by |w| total 4 / present 3; row 2: nothing left
    assert out[0] == 9.0
    assert out[1] == pytest.approx(8 * 4 / 3)
    assert math.isnan(out[2])


def test_weighted_sum_per_sample_weights() -> None:
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert weighted_sum([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], w).tolist() == [1.0, 3.0]


def test_directional_normalises_the_direction() -> None:
    # v = (3, 4)/5 → 0.6·10 + 0.8·5
    assert directional([[10.0, 5.0]], [3.0, 4.0]).tolist() == pytest.approx([10.0])
    assert directional([[10.0, 5.0]], [30.0, 40.0]).tolist() == pytest.approx([10.0])
    with pytest.raises(rh.AggregationError, match="zero vector"):
        directional([[1.0, 2.0]], [0.0, 0.0])


def test_tchebycheff_by_hand() -> None:
    vals = [[1.0, 2.0, 3.0], [0.0, 1.0, 4.0]]
    # ideal = column max (1, 2, 4); gaps row 0: (0, 0, 1), row 1: (1, 1, 0)
    assert tchebycheff(vals).tolist() == [-1.0, -1.0]
    # weights (2, 1, 1): row 1 gap 2·1 = 2 binds
    assert tchebycheff(vals, [2.0, 1.0, 1.0]).tolist() == [-1.0, -2.0]
    # explicit ideal (2, 2, 5): row 0 gaps (1, 0, 2) → −2
    assert tchebycheff(vals, ideal=[2.0, 2.0, 5.0]).tolist() == [-2.0, -2.0]
    with pytest.raises(rh.AggregationError, match="ideal must be 3"):
        tchebycheff(vals, ideal=[1.0, 2.0])


def test_smooth_tchebycheff_by_hand_and_limit() -> None:
    vals = np.array([[1.0, 2.0], [0.0, 2.0]])
    ideal = [2.0, 2.0]
    # row 0 gaps (1, 0): −μ log(e^{1/μ} + e^0)
    mu = 0.5
    expect = -mu * math.log(math.exp(1 / mu) + 1.0)
    assert smooth_tchebycheff(vals, ideal=ideal, mu=mu)[0] == pytest.approx(expect)
    # μ → 0 is Tchebycheff; it is always ≤ Tchebycheff (log-sum-exp ≥ max)
    tch = tchebycheff(vals, ideal=ideal)
    assert smooth_tchebycheff(vals, ideal=ideal, mu=1e-6) == pytest.approx(tch, abs=1e-5)
    assert (smooth_tchebycheff(vals, ideal=ideal, mu=1.0) <= tch).all()
    with pytest.raises(rh.AggregationError, match="mu must be"):
        smooth_tchebycheff(vals, mu=0.0)


def test_maxmin_by_hand() -> None:
    out = maxmin(V)
    assert out[:2].tolist() == [1.0, 0.0]
    assert math.isnan(out[2])


def test_softmin_by_hand() -> None:
    # r = (0, ln 3), τ = 1: −log(1 + 1/3) + log 2
    assert softmin([[0.0, math.log(3.0)]], 1.0)[0] == pytest.approx(-math.log(4 / 3) + math.log(2))


def test_softmin_limits() -> None:
    vals = np.array([[1.0, 2.0, 6.0], [-3.0, 0.5, 0.5]])
    assert softmin(vals, 1e-4) == pytest.approx(vals.min(axis=1), abs=1e-3)
    assert softmin(vals, 1e9) == pytest.approx(vals.mean(axis=1), rel=1e-7)
    assert softmin(vals, 1e15) == pytest.approx(vals.mean(axis=1), rel=1e-6)
    with pytest.raises(rh.AggregationError, match="use maxmin"):
        softmin(vals, 0.0)


def test_softmin_skips_abstained_cells() -> None:
    out = softmin([[1.0, np.nan, 3.0]], 1.0)
    assert out[0] == pytest.approx(softmin([[1.0, 3.0]], 1.0)[0])


@pytest.mark.parametrize(
    "fn",
    [
        weighted_sum,
        maxmin,
        tchebycheff,
        smooth_tchebycheff,
        softmin,
        lambda v: directional(v, np.ones(np.asarray(v).shape[-1])),
    ],
)
def test_bad_inputs_give_clear_errors(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    with pytest.raises(rh.AggregationError, match="empty"):
        f(np.zeros((0, 3)))  # type: ignore[operator]
    with pytest.raises(rh.AggregationError, match="inf"):
        f([[1.0, np.inf]])  # type: ignore[operator]
    with pytest.raises(rh.AggregationError, match="2-D"):
        f(np.zeros((2, 2, 2)))  # type: ignore[operator]
    # one objective, one sample: every scalariser returns that value (up to weights)
    assert f([[2.5]])[0] == pytest.approx(
        2.5 if f not in (tchebycheff, smooth_tchebycheff) else 0.0
    )  # type: ignore[operator]


def test_weights_of_the_wrong_shape() -> None:
    with pytest.raises(rh.AggregationError, match="one weight per objective"):
        weighted_sum([[1.0, 2.0]], [1.0, 2.0, 3.0])


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(matrices, st.floats(0.01, 100.0))
def test_softmin_between_min_and_mean(v: np.ndarray, tau: float) -> None:
    s = softmin(v, tau)
    assert (s >= v.min(axis=1) - 1e-9 * (1 + np.abs(v).max())).all()
    assert (s <= v.mean(axis=1) + 1e-9 * (1 + np.abs(v).max())).all()


@settings(max_examples=60, deadline=None)
@given(matrices, st.data())
def test_weighted_is_linear(v: np.ndarray, data: st.DataObject) -> None:
    k = v.shape[1]
    w1 = data.draw(arrays(np.float64, (k,), elements=st.floats(-5, 5)))
    w2 = data.draw(arrays(np.float64, (k,), elements=st.floats(-5, 5)))
    a, b = data.draw(st.floats(-3, 3)), data.draw(st.floats(-3, 3))
    u = data.draw(arrays(np.float64, v.shape, elements=finite))
    lhs = weighted_sum(a * v + b * u, w1)
    assert lhs == pytest.approx(a * weighted_sum(v, w1) + b * weighted_sum(u, w1), abs=1e-6)
    both = weighted_sum(v, w1 + w2)
    assert both == pytest.approx(weighted_sum(v, w1) + weighted_sum(v, w2), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(matrices)
def test_maxmin_and_tchebycheff_agree_with_numpy(v: np.ndarray) -> None:
    assert maxmin(v).tolist() == v.min(axis=1).tolist()
    assert tchebycheff(v) == pytest.approx(-(v.max(axis=0) - v).max(axis=1))


# -- registered aggregators -------------------------------------------------------------------


def test_registered_names() -> None:
    names = rh.Hub(entry_points=False).aggregators.names()
    for m in ("weighted", "directional", "tchebycheff", "smooth_tchebycheff", "maxmin", "softmin"):
        assert m in names


def test_weighted_attribution_sums_to_total() -> None:
    agg = Weighted({"weights": {"c": 2.0}}, NAMES).aggregate(V, ctx())
    assert agg.total[0] == 9.0
    per = agg.diagnostics["per_sample"]
    assert per[0]["contributions"] == {"a": 1.0, "b": 2.0, "c": 6.0}
    assert sum(x for x in per[1]["contributions"].values() if x is not None) == pytest.approx(
        agg.total[1]
    )
    assert per[1]["contributions"]["b"] is None


def test_per_sample_weights_from_metadata() -> None:
    samples = [
        rh.Sample(prompt="p", completion="x", metadata={"weights": {"a": 1.0}}),
        rh.Sample(prompt="p", completion="y"),
    ]
    vals = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    c = rh.Context(objectives=NAMES, samples=samples)
    # sample 0's preference vector names only a → b, c get 0; sample 1 uses the spec weights
    assert Weighted({}, NAMES).aggregate(vals, c).total.tolist() == [1.0, 6.0]
    assert Directional({}, NAMES).aggregate(vals, c).total.tolist() == pytest.approx(
        [1.0, 6 / math.sqrt(3)]
    )
    assert Tchebycheff({}, NAMES).aggregate(vals, c).total.tolist() == [0.0, 0.0]
    bad = [rh.Sample(prompt="p", completion="x", metadata={"weights": {"zz": 1.0}})]
    with pytest.raises(rh.AggregationError, match=r"samples\[0\].*unknown objective"):
        Weighted({}, NAMES).aggregate(vals[:1], rh.Context(objectives=NAMES, samples=bad))


def test_per_call_weights_override_spec() -> None:
    c = ctx(3, weights={"a": 0.0})
    out = Weighted({"weights": {"a": 5.0}}, NAMES).aggregate(V, c)
    assert out.total[0] == 5.0


@pytest.mark.parametrize(
    ("cls", "config"),
    [(MaxMin, {}), (Tchebycheff, {}), (SmoothTchebycheff, {"mu": 0.01}), (Softmin, {"tau": 0.1})],
)
def test_binding_objective_is_reported(cls: type[rh.Aggregator], config: dict[str, float]) -> None:
    vals = np.array([[0.1, 0.9, 0.8], [0.9, 0.2, 0.8], [np.nan] * 3])
    agg = cls(config, NAMES).aggregate(vals, ctx())
    per = agg.diagnostics["per_sample"]
    assert [p["binding"] for p in per] == ["a", "b", None]
    if "softmax" in per[0]:
        assert sum(per[0]["softmax"].values()) == pytest.approx(1.0)
        assert max(per[0]["softmax"], key=per[0]["softmax"].get) == "a"
    counts = rh.aggregate.binding_counts(agg.diagnostics)
    assert counts == {"a": 1, "b": 1}


def test_tchebycheff_ideal_must_name_every_objective() -> None:
    with pytest.raises(rh.AggregationError, match="ideal lacks"):
        Tchebycheff({"ideal": {"a": 1.0}}, NAMES).aggregate(V, ctx())


def test_spec_rejects_bad_params() -> None:
    with pytest.raises(Exception, match="tau"):
        Softmin({"tau": -1}, NAMES)
