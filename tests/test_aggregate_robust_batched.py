"""The batched robust-weights solver against the per-group solver and an independent one."""

from __future__ import annotations

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
