"""The batched robust-weights solver against the per-group solver and an independent one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardhub.aggregate import (
    robust_objective,
    robust_weights,
    robust_weights_batched,
)
from rewardhub.aggregate.robust import duality_gap
from rewardhub.errors import AggregationError


def _instances(rng: np.random.Generator, count: int) -> list[tuple[np.ndarray, float]]:
    """Random instances at three value scales and λ from 0.01 to 10, with degenerate ones."""
    out = []
    for i in range(count):
        k = int(rng.integers(1, 12))
        m = int(rng.integers(2, 6))
        scale = (1.0, 100.0, 1e-3)[i % 3]
        v = rng.normal(size=(k, m)) * scale
        if i % 7 == 0:
            v[:, 0] = v[:, 1]  # two identical objectives: a flat direction
        if i % 11 == 0:
            v[:] = v[0]  # identical candidates
        lam = float(10 ** rng.uniform(-2, 1))
        out.append((v, lam))
    return out


def test_batched_matches_the_per_group_solver_at_every_scale() -> None:
    rng = np.random.default_rng(7)
    for lam in (0.01, 0.3, 1.0, 10.0):
        blocks = [inst for inst, _ in _instances(rng, 60)]
        # the batched call takes one λ; group the instances by width
        for m in {b.shape[1] for b in blocks}:
            same = [b for b in blocks if b.shape[1] == m]
            batched = robust_weights_batched(same, lam)
            assert batched.shape == (len(same), m)
            for b, w in zip(same, batched):
                scale = max(float(np.abs(b).max()), 1e-300)
                # certified like the single solver, and no worse an objective than it
                assert duality_gap(b, w, lam) <= 1e-7 * scale
                assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
                single = robust_weights(b, lam)
                assert (
                    robust_objective(b, w, lam) <= robust_objective(b, single, lam) + 1e-7 * scale
                )


def test_batched_agrees_with_scipy_slsqp_on_a_wide_sweep() -> None:
    """scipy's SLSQP is an independent solver; its optimum can only be as good as ours."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    for v, lam in _instances(rng, 45):
        w = robust_weights_batched([v], lam)[0]
        m = v.shape[1]
        res = minimize(
            lambda x, v=v, lam=lam: robust_objective(v, np.clip(x, 0, None), lam),
            np.full(m, 1.0 / m),
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        ref = np.clip(res.x, 0, None)
        ref /= ref.sum()
        scale = float(np.abs(v).max())
        assert robust_objective(v, w, lam) <= robust_objective(v, ref, lam) + 1e-7 * max(scale, 1)


def test_groups_of_different_sizes_and_a_3d_array() -> None:
    rng = np.random.default_rng(1)
    blocks = [rng.normal(size=(k, 3)) for k in (1, 2, 5, 16)]
    w = robust_weights_batched(blocks, 0.5)
    for b, wi in zip(blocks, w):
        np.testing.assert_allclose(wi, robust_weights(b, 0.5), atol=1e-6)
    cube = rng.normal(size=(4, 6, 3))
    np.testing.assert_allclose(
        robust_weights_batched(cube, 1.0),
        np.stack([robust_weights(c, 1.0) for c in cube]),
        atol=1e-6,
    )


def test_one_candidate_puts_all_weight_on_its_worst_objective() -> None:
    w = robust_weights_batched([np.array([[3.0, -1.0, 2.0]])], 1.0)
    np.testing.assert_allclose(w[0], [0.0, 1.0, 0.0], atol=1e-9)


def test_the_hand_worked_symmetric_case() -> None:
    # two candidates, each best on one objective: by symmetry w* = (1/2, 1/2)
    w = robust_weights_batched([np.array([[1.0, 0.0], [0.0, 1.0]])] * 3, 0.7)
    np.testing.assert_allclose(w, 0.5, atol=1e-9)


def test_bad_input_is_refused_with_the_group_named() -> None:
    with pytest.raises(AggregationError, match="group 1 has NaN"):
        robust_weights_batched([np.ones((2, 2)), np.array([[1.0, np.nan]])])
    with pytest.raises(AggregationError, match="same objectives"):
        robust_weights_batched([np.ones((2, 2)), np.ones((2, 3))])
    assert robust_weights_batched([np.ones((3, 1))]).tolist() == [[1.0]]


def test_the_robust_aggregator_uses_it_per_group() -> None:
    rng = np.random.default_rng(5)
    n_groups, k = 40, 6
    values = rng.normal(size=(n_groups * k, 3))
    groups = np.repeat(np.arange(n_groups), k)
    values[3, 1] = np.nan  # an abstained cell: imputed with the group mean, as before
    from rewardhub.aggregate.base import Context
    from rewardhub.aggregate.robust import Robust

    agg = Robust({"lam": 0.5})
    ctx = Context(objectives=("a", "b", "c"), _groups=groups)
    res = agg.aggregate(values, ctx)
    for g in range(n_groups):
        rows = slice(g * k, (g + 1) * k)
        block = values[rows].copy()
        col_mean = np.nanmean(block, axis=0)
        block = np.where(np.isnan(block), col_mean, block)
        w = robust_weights(block, 0.5)
        np.testing.assert_allclose(res.total[rows], block @ w, atol=1e-6)


# --- the vectorised solver itself (robust_weights_batched solves fewer than SMALL_BATCH groups
# one by one, so these call it with many groups or through solve_groups directly) ---


def _sweep_group(rng: np.random.Generator, m: int) -> np.ndarray:
    """One group at an extreme or ordinary scale, often degenerate: ties, duplicate or constant
    columns, identical candidates, one candidate."""
    k = int(rng.choice([1, 2, 3, 8, 8, 16, 40]))
    v = rng.normal(size=(k, m)) * 10 ** rng.uniform(-3, 4)
    kind = rng.random()
    if kind < 0.15 and m > 1:
        v[:, 1] = v[:, 0]  # duplicate columns: a flat direction
    elif kind < 0.3:
        v = np.round(v / np.abs(v).max() * 3)  # few distinct values: ties everywhere
    elif kind < 0.4:
        v[:, 0] = 0.0  # a constant column
    elif kind < 0.5:
        v[:] = v[0]  # identical candidates
    return v


def _padded(blocks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    kmax = max(b.shape[0] for b in blocks)
    v = np.zeros((len(blocks), kmax, blocks[0].shape[1]))
    mask = np.zeros((len(blocks), kmax), dtype=bool)
    for g, b in enumerate(blocks):
        v[g, : b.shape[0]] = b
        mask[g, : b.shape[0]] = True
    return v, mask


@pytest.mark.parametrize("lam", [1e-3, 0.05, 1.0, 100.0])
def test_vectorised_solver_certifies_every_group_of_a_wide_sweep(lam: float) -> None:
    """solve_groups alone (no per-group rescue) certifies every group at every scale and agrees
    with the per-group solver's objective both ways."""
    from rewardhub.aggregate._robust_batched import solve_groups

    rng = np.random.default_rng(int(lam * 1000) + 17)
    for m in (2, 3, 5):
        blocks = [_sweep_group(rng, m) for _ in range(60)]
        v, mask = _padded(blocks)
        scale = np.abs(v).max(axis=(1, 2))
        w, gaps = solve_groups(v, mask, lam, 1e-10 * scale)
        for b, wg, gap, sc in zip(blocks, w, gaps, scale):
            assert wg.min() >= 0 and wg.sum() == pytest.approx(1.0)
            assert gap <= 1e-7 * sc
            assert duality_gap(b, wg, lam) <= 1e-7 * sc
            single = robust_weights(b, lam)
            f, f_single = robust_objective(b, wg, lam), robust_objective(b, single, lam)
            assert abs(f - f_single) <= 1e-7 * sc


def test_vectorised_solver_needs_no_rescue_on_the_benchmark_shapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The active set certifies 8 × 3 groups at |v| ~ 1 and at |v| ~ 100 with λ = 0.05 by
    itself: no group is solved again alone."""
    import rewardhub.aggregate.robust as robust

    def no_rescue(*args: object) -> None:
        raise AssertionError("a group was solved again alone")

    monkeypatch.setattr(robust, "_certified_or_error", no_rescue)
    rng = np.random.default_rng(0)
    for lam, scale in ((1.0, 1.0), (0.05, 100.0), (0.01, 1.0), (1.0, 1e4)):
        blocks = rng.normal(size=(256, 8, 3)) * scale
        w = robust_weights_batched(blocks, lam)
        for b, wg in zip(blocks, w):
            assert duality_gap(b, wg, lam) <= 1e-7 * np.abs(b).max()


def test_batched_agrees_with_the_per_group_solver_on_well_posed_groups() -> None:
    # continuous random values: the optimum is unique, so the weights agree, not just f
    rng = np.random.default_rng(2)
    for lam, scale in ((0.05, 100.0), (1.0, 1.0), (0.01, 1.0), (10.0, 1e-3)):
        blocks = rng.normal(size=(40, 8, 3)) * scale
        w = robust_weights_batched(blocks, lam)
        loop = np.stack([robust_weights(b, lam) for b in blocks])
        np.testing.assert_allclose(w, loop, atol=1e-6)


def test_batched_with_mixed_sizes_one_objective_and_one_candidate() -> None:
    rng = np.random.default_rng(4)
    # m = 1: the only weighting there is
    assert robust_weights_batched(rng.normal(size=(20, 5, 1)), 0.1).tolist() == [[1.0]] * 20
    # K = 1 in every group: all weight on each group's worst objective
    ones = rng.normal(size=(20, 1, 4))
    w = robust_weights_batched(ones, 0.3)
    np.testing.assert_allclose(w, np.eye(4)[ones[:, 0].argmin(axis=1)], atol=1e-9)
    # groups of different sizes in one vectorised call
    blocks = [rng.normal(size=(int(k), 3)) * 50 for k in rng.integers(1, 30, size=24)]
    w = robust_weights_batched(blocks, 0.02)
    for b, wg in zip(blocks, w):
        assert duality_gap(b, wg, 0.02) <= 1e-7 * np.abs(b).max()


def test_huge_and_tiny_lambda_reach_their_limits() -> None:
    """λ → ∞: f → the mean candidate's value, minimised at the column of smallest mean; λ → 0:
    f → the max-min LP's value (within λ·log K)."""
    from scipy.optimize import linprog

    rng = np.random.default_rng(9)
    blocks = rng.normal(size=(16, 8, 3))
    w = robust_weights_batched(blocks, 1e6)
    np.testing.assert_allclose(w, np.eye(3)[blocks.mean(axis=1).argmin(axis=1)], atol=1e-6)
    lam = 1e-6
    w = robust_weights_batched(blocks, lam)
    for b, wg in zip(blocks, w):
        k, m = b.shape
        # min t s.t. b·w ≤ t, Σ w = 1, w ≥ 0 over x = (w, t)
        lp = linprog(
            np.r_[np.zeros(m), 1.0],
            A_ub=np.c_[b, -np.ones(k)],
            b_ub=np.zeros(k),
            A_eq=np.r_[np.ones(m), 0.0][None],
            b_eq=[1.0],
            bounds=[(0, None)] * m + [(None, None)],
        )
        f = robust_objective(b, wg, lam)
        assert lp.fun - lam * math.log(k) - 1e-9 <= f <= lp.fun + 1e-9


def test_the_plain_python_solver_certifies_alone_on_a_wide_sweep() -> None:
    """The fast path for one small instance must not lean on a fallback: it certifies
    by itself at every scale and on degenerate input."""
    from rewardhub.aggregate import _robust_small as small

    rng = np.random.default_rng(21)
    for _ in range(400):
        m = int(rng.integers(2, 7))
        v = _sweep_group(rng, m)
        lam = float(10 ** rng.uniform(-3, 2))
        scale = float(np.abs(v).max())
        w = small.solve(small.Lists(v.tolist(), lam), 1e-10 * scale, 200)
        w_np = small.solve(small.Arrays(v, lam), 1e-10 * scale, 200)
        assert duality_gap(v, w_np, lam) <= 1e-7 * scale
        assert min(w) >= 0 and sum(w) == pytest.approx(1.0)
        assert small.gap(v.tolist(), lam, w) <= 1e-7 * scale
        assert duality_gap(v, w, lam) <= 1e-7 * scale


def test_one_instance_needs_no_fallback_on_the_benchmark_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The benchmark's three scales (8 × 3; N(0, 1), N(0, 100), λ from 0.01 to 10): the
    plain-Python solver certifies every one, so the cvxpy last resort never runs."""
    import rewardhub.aggregate.robust as robust

    def fallback(*args: object) -> None:
        raise AssertionError("a fallback ran")

    monkeypatch.setattr(robust, "_cvxpy_weights", fallback)
    rng = np.random.default_rng(0)
    for i in range(300):
        v = rng.normal(size=(8, 3)) * (100.0 if i % 3 == 1 else 1.0)
        lam = float(10 ** rng.uniform(-2, 1)) if i % 3 == 2 else 1.0
        w = robust_weights(v, lam)
        assert duality_gap(v, w, lam) <= 1e-7 * np.abs(v).max()


def test_batched_is_never_worse_than_cvxpy() -> None:
    cp = pytest.importorskip("cvxpy")
    import warnings

    rng = np.random.default_rng(13)
    for lam in (0.005, 0.2, 5.0):
        blocks = [_sweep_group(rng, 3) for _ in range(24)]
        w = robust_weights_batched(blocks, lam)
        for b, wg in zip(blocks, w):
            x = cp.Variable(3)
            problem = cp.Problem(cp.Minimize(cp.log_sum_exp(b / lam @ x)), [x >= 0, cp.sum(x) == 1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "inaccurate" at extreme scales
                problem.solve(solver="CLARABEL")
            ref = np.clip(np.asarray(x.value, dtype=np.float64), 0.0, None)
            ref /= ref.sum()
            scale = float(np.abs(b).max())
            assert robust_objective(b, wg, lam) <= robust_objective(b, ref, lam) + 1e-7 * scale


def test_the_two_representations_take_the_same_line_search_step() -> None:
    """Lists and Arrays minimise logsumexp(s + t·r) on [0, t_max] to the same t, also where
    one sign of r sits ~800 below the maximum (a shared exp shift underflows there)."""
    from rewardhub.aggregate import _robust_small as small

    rng = np.random.default_rng(6)
    cases = []
    for _ in range(50):
        s = rng.normal(size=9) * 10
        r = rng.normal(size=9)
        r -= r @ np.exp(s - s.max()) / np.exp(s - s.max()).sum() + 0.1  # a descent direction
        cases.append((s, r))
    s = np.array([0.0, -800.0, -801.0, -5.0])
    cases.append((s, np.array([0.0, 2.0, 1.0, -1.0])))  # rising candidates only far below
    for s, r in cases:
        lists = small.Lists([[1.0]], 1.0)
        arrays = small.Arrays(np.ones((1, 1)), 1.0)
        t_max = 3.0
        t_l, _ = lists.line(s.tolist(), r.tolist(), t_max, 1.0)
        t_a, _ = arrays.line(s, r, t_max, 1.0)
        assert t_a == pytest.approx(t_l, rel=1e-6, abs=1e-12)
        if t_l < t_max:  # an interior minimum: the slope vanishes there
            x = s + t_l * r
            p = np.exp(x - x.max())
            assert abs(p @ r / p.sum()) <= 1e-3 * np.abs(r).max()
