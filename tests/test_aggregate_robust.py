"""Robust weights (RMOD): hand-worked optimum, KKT conditions, cross-check against cvxpy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.aggregate import robust_objective, robust_weights
from rewardhub.aggregate.robust import Robust, duality_gap


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


def _cvxpy_reference(v: np.ndarray, lam: float) -> np.ndarray:
    import cvxpy as cp

    w = cp.Variable(v.shape[1])
    problem = cp.Problem(cp.Minimize(cp.log_sum_exp(v / lam @ w)), [w >= 0, cp.sum(w) == 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" at extreme scales
        problem.solve(solver="CLARABEL")
    x = np.clip(np.asarray(w.value, dtype=np.float64), 0.0, None)
    return x / x.sum()


def _slsqp_reference(v: np.ndarray, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Best of several SLSQP starts (the uniform point, each vertex, random points)."""
    from scipy.optimize import minimize

    m = v.shape[1]
    starts = [np.full(m, 1.0 / m), *np.eye(m), *rng.dirichlet(np.ones(m), size=3)]
    best, best_f = starts[0], math.inf
    for x0 in starts:
        res = minimize(
            lambda w: robust_objective(v, np.clip(w, 0, None), lam),
            x0,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            options={"maxiter": 300, "ftol": 1e-14},
        )
        x = np.clip(res.x, 0.0, None)
        x /= x.sum()
        f = robust_objective(v, x, lam)
        if f < best_f:
            best, best_f = x, f
    return best


def _sweep_instance(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    m = int(rng.integers(1, 7))
    k = int(rng.integers(1, 12))
    v = rng.normal(size=(k, m)) * 10 ** rng.uniform(-2, 3)
    kind = rng.random()
    if kind < 0.2 and m > 1:
        v[:, 1] = v[:, 0]  # duplicate columns
    elif kind < 0.3:
        v = np.round(v)  # ties
    elif kind < 0.4:
        v[:, 0] = 0.0  # a constant column
    return v, float(10 ** rng.uniform(-3, 2))


def test_issue_instance_old_solver_returned_the_uniform_start() -> None:
    # 6 × 3, λ = 0.005: the old active-set solver stalled in its line search at the uniform
    # start and called it optimal (objective 1.524); the optimum is 0.616
    v = np.array(
        [
            [0.4, -0.4, 1.9],
            [0.3, -1.6, 1.1],
            [3.9, 2.8, -2.1],
            [-3.8, -1.9, 0.1],
            [-7.0, -0.7, -3.7],
            [-2.2, -1.6, -0.9],
        ]
    )
    w = robust_weights(v, 0.005)
    assert robust_objective(v, w, 0.005) == pytest.approx(0.6163956748, abs=1e-7)
    assert duality_gap(v, w, 0.005) <= 1e-7 * 7.0
    ref = _cvxpy_reference(v, 0.005)
    assert robust_objective(v, w, 0.005) <= robust_objective(v, ref, 0.005) + 1e-7


def test_certified_at_every_scale_against_cvxpy_and_slsqp() -> None:
    """Values scaled 1e-2..1e3, λ 1e-3..1e2, duplicate / constant columns, K = 1 and m = 1:
    never above either reference, and the duality gap is a true bound on both."""
    rng = np.random.default_rng(7)
    for _ in range(25):
        v, lam = _sweep_instance(rng)
        w = robust_weights(v, lam)
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
        scale = float(np.abs(v).max())
        f = robust_objective(v, w, lam)
        gap = duality_gap(v, w, lam)
        assert gap <= 1e-7 * scale
        for ref in (_cvxpy_reference(v, lam), _slsqp_reference(v, lam, rng)):
            f_ref = robust_objective(v, ref, lam)
            assert f <= f_ref + 1e-7 * scale + 1e-12
            assert f_ref >= f - gap - 1e-9 * scale  # the certificate is a real lower bound


@pytest.mark.slow
def test_wide_random_sweep_against_cvxpy() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        v, lam = _sweep_instance(rng)
        w = robust_weights(v, lam)
        scale = float(np.abs(v).max())
        f_ref = robust_objective(v, _cvxpy_reference(v, lam), lam)
        assert robust_objective(v, w, lam) <= f_ref + 1e-7 * scale + 1e-12


def test_uncertifiable_answer_raises_instead_of_returning(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardhub.aggregate.robust as robust
    from rewardhub.errors import MissingExtraError

    # the solver stops at the uniform start (as the old one did) and cvxpy is not installed:
    # never returned silently, and the error names the instance and the fix
    monkeypatch.setattr(robust.small, "solve", lambda problem, target, it, start: [1 / 3] * 3)

    def no_cvxpy(v: np.ndarray, lam: float) -> np.ndarray:
        raise MissingExtraError("cvxpy", "solver")

    monkeypatch.setattr(robust, "_cvxpy_weights", no_cvxpy)
    v = [[0.4, -0.4, 1.9], [3.9, 2.8, -2.1], [-7.0, -0.7, -3.7]]
    with pytest.raises(rh.AggregationError, match=r"could not certify .* 3 × 3 .*λ = 0\.005"):
        robust_weights(v, 0.005)
    # an uncertified cvxpy answer is not returned either
    monkeypatch.setattr(robust, "_cvxpy_weights", lambda v, lam: np.full(3, 1 / 3))
    with pytest.raises(rh.AggregationError, match="rewardhub\\[solver\\]"):
        robust_weights(v, 0.005)


def test_cvxpy_is_the_certified_last_resort_when_the_solver_stops_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The active-set solver certifies every instance of the tests' sweeps by itself, so pin
    what remains behind it on its own: an answer it leaves uncertified is solved by cvxpy and
    returned only under the same certificate (cvxpy finds the face, the solver restarts on
    it: Clarabel's own answer is not certified at small λ)."""
    pytest.importorskip("cvxpy")
    import rewardhub.aggregate.robust as robust

    calls = []
    solve_cvxpy = robust._cvxpy_weights

    def counted(v: np.ndarray, lam: float) -> np.ndarray:
        calls.append(lam)
        return solve_cvxpy(v, lam)

    solve = robust.small.solve

    def stops_at_the_centre(
        problem: object, target: float, it: int, start: list[float] | None = None
    ) -> list[float]:
        # as the old solver did from the simplex's centre; from cvxpy's face it runs
        return [1 / 3] * 3 if start is None else solve(problem, target, it, start)  # type: ignore[arg-type]

    monkeypatch.setattr(robust, "_cvxpy_weights", counted)
    monkeypatch.setattr(robust.small, "solve", stops_at_the_centre)
    v = np.array([[0.4, -0.4, 1.9], [3.9, 2.8, -2.1], [-7.0, -0.7, -3.7], [1.0, 2.0, -1.0]])
    for lam in (0.005, 0.05, 1.0):
        w = robust_weights(v, lam)
        assert duality_gap(v, w, lam) <= 1e-7 * 7.0
    assert calls == [0.005, 0.05, 1.0]


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


def test_aggregator_makes_an_uncertified_group_unscorable(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardhub.aggregate.robust as robust

    def refuse(blocks: list[np.ndarray], *args: object) -> list[rh.AggregationError]:
        return [rh.AggregationError("robust_weights could not certify its optimum") for _ in blocks]

    monkeypatch.setattr(robust, "_solve_many", refuse)
    names = ("a", "b")
    out = Robust({"scope": "batch"}, names).aggregate(
        np.array([[1.0, 2.0], [2.0, 1.0]]), rh.Context(objectives=names)
    )
    assert np.isnan(out.total).all()  # NaN with the reason, never a made-up weighting
    assert "could not certify" in out.diagnostics["per_sample"][0]["error"]


@pytest.mark.parametrize(
    ("size", "lam"), [(1e-150, 1.0), (1e-20, 1.0), (1e-20, 1e10), (1.0, 1e100), (1e20, 1e100)]
)
def test_rewards_far_from_unit_scale_are_solved_as_the_same_scale_free_problem(
    size: float, lam: float
) -> None:
    """argmin f(w; v, λ) = argmin f(w; v/c, λ/c): tiny or huge rewards are certified like
    unit ones (they used to under- or overflow in the solver's products and raise)."""
    from rewardhub.aggregate import robust_weights_batched

    v = np.random.default_rng(0).normal(size=(8, 3))
    w = robust_weights(v * size, lam)
    np.testing.assert_allclose(w, robust_weights(v, lam / size), atol=1e-6)
    assert duality_gap(v * size, w, lam) <= 1e-7 * size * np.abs(v).max()
    batched = robust_weights_batched(np.stack([v * size] * 10), lam)
    np.testing.assert_allclose(batched, np.stack([w] * 10), atol=1e-6)
