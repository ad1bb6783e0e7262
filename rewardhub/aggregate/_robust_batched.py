"""RMOD's worst-case weights for many groups at once, vectorised over the groups.

Each group g has K_g candidate reward vectors (rows of ``values`` where ``mask`` is True) and
the same problem as :func:`rewardhub.aggregate.robust.robust_weights`:

    w*_g = argmin_{w ∈ Δ_m}  λ · log( (1/K_g) Σ_k exp(values[g, k] · w / λ) )

All groups take the same steps together: a log-barrier interior-point method (batched Newton
on the KKT systems, a per-group line search and a per-group barrier weight μ), then Newton on
the face each group's barrier answer points at, which makes its near-zero weights exact zeros
and its gap as small as the floats allow. Every group's answer is certified by the same duality
gap as the single-group solver; a group that is not certified is solved again by that solver
(which certifies or raises), so the batched answer is never less exact than the loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rewardhub.types import FloatArray

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
#: the barrier only has to find each group's face (Newton on it does the rest): it stops at
#: this fraction of the accepted gap
BARRIER = 0.5


def _evaluate(
    v: FloatArray, mask: BoolArray, k: FloatArray, lam: float, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per group: f(w), ∇f = vᵀp and p = softmax(v·w/λ) over the group's candidates."""
    s = np.einsum("gkm,gm->gk", v, w) / lam
    s = np.where(mask, s, -np.inf)
    top = s.max(axis=1)
    e = np.exp(s - top[:, None])  # exp(-inf) = 0 on padding
    z = e.sum(axis=1)
    p = e / z[:, None]
    f = lam * (top + np.log(z / k))
    g = np.einsum("gkm,gk->gm", v, p)
    return f, g, p


def _hessian(v: FloatArray, p: FloatArray, g: FloatArray, lam: float) -> FloatArray:
    """∇²f per group: the covariance of v's columns under p, over λ (G × m × m)."""
    vc = v - g[:, None, :]
    h: FloatArray = np.einsum("gkm,gk,gkn->gmn", vc, p, vc) / lam
    return h


def fw_gaps(w: FloatArray, g: FloatArray) -> FloatArray:
    """The Frank–Wolfe (= primal–dual) gap of each group: w·∇f − min_j ∇f_j."""
    gap: FloatArray = np.maximum(0.0, np.einsum("gm,gm->g", w, g) - g.min(axis=1))
    return gap


def _kkt_solve(h: FloatArray, grad: FloatArray, free: BoolArray) -> FloatArray:
    """Newton directions d on {Σ d = 0, d_j = 0 where not free} for every group at once:
    [H 1; 1ᵀ 0] [d; ν] = [−grad; 0] restricted to the free coordinates (fixed ones get an
    identity row, so the batched system keeps one shape)."""
    gcount, m = grad.shape
    a = np.zeros((gcount, m + 1, m + 1))
    both = free[:, :, None] & free[:, None, :]
    scale = 1e-12 * (1.0 + np.einsum("gii->g", h))
    a[:, :m, :m] = (
        np.where(both, h, 0.0) + np.eye(m) * np.where(free, scale[:, None], 1.0)[:, :, None]
    )
    a[:, :m, m] = a[:, m, :m] = free
    rhs = np.zeros((gcount, m + 1))
    rhs[:, :m] = np.where(free, -grad, 0.0)
    try:
        d: FloatArray = np.linalg.solve(a, rhs[..., None])[..., 0][:, :m]
    except np.linalg.LinAlgError:  # a singular group: the projected gradient for everyone
        return _projected_descent(grad, free)
    bad = ~np.isfinite(d).all(axis=1)
    if bad.any():
        d[bad] = _projected_descent(grad[bad], free[bad])
    return d


def _projected_descent(grad: FloatArray, free: BoolArray) -> FloatArray:
    """−∇f projected on {Σ d = 0, d_j = 0 where not free}: a descent direction that always
    exists (the fallback where a Newton direction does not)."""
    mean = np.where(free, grad, 0.0).sum(axis=1) / np.maximum(free.sum(axis=1), 1)
    out: FloatArray = np.where(free, -(grad - mean[:, None]), 0.0)
    return out


def _backtrack(
    v: FloatArray,
    mask: BoolArray,
    k: FloatArray,
    lam: float,
    idx: IntArray,
    w0: FloatArray,
    d: FloatArray,
    alpha: FloatArray,
    start: FloatArray,
    slope: FloatArray,
    *,
    tries: int,
    floor: float,
    mu: FloatArray | None = None,
    edge: tuple[FloatArray, IntArray] | None = None,
) -> tuple[FloatArray, IntArray]:
    """Armijo backtracking for the groups ``idx`` at once: each group's step ``alpha`` (halved
    in place until accepted) from ``w0`` along ``d``, until f (minus μ Σ log w when ``mu`` is
    given: the barrier) is ≤ start + 1e-4·α·slope. Trial points are clipped at ``floor`` and
    renormalised; with ``edge`` = (α_max, blocking coordinate), a step of α_max lands exactly
    on that face. Returns the accepted points (``w0`` where none was) and the positions still
    pending."""
    new_w = w0.copy()
    pending = np.arange(idx.size)
    for _ in range(tries):
        trial = np.maximum(w0[pending] + alpha[pending, None] * d[pending], floor)
        if edge is not None:
            alpha_max, blocking = edge
            hit = alpha[pending] == alpha_max[pending]
            trial[hit, blocking[pending][hit]] = 0.0
        trial /= trial.sum(axis=1, keepdims=True)
        sub = idx[pending]
        value = _evaluate(v[sub], mask[sub], k[sub], lam, trial)[0]
        if mu is not None:
            value = value - mu[pending] * np.log(trial).sum(axis=1)
        ok = value <= start[pending] + 1e-4 * alpha[pending] * slope[pending]
        new_w[pending[ok]] = trial[ok]
        pending = pending[~ok]
        if pending.size == 0:
            break
        alpha[pending] *= 0.5
    return new_w, pending


def _barrier(
    v: FloatArray, mask: BoolArray, k: FloatArray, lam: float, target: FloatArray
) -> FloatArray:
    """min f(w) − μ Σ log w_j on Σ w = 1 for every group, μ → 0 per group until its gap is
    within ``target`` (or μ can go no lower)."""
    gcount, m = v.shape[0], v.shape[2]
    w = np.full((gcount, m), 1.0 / m)
    f, g, p = _evaluate(v, mask, k, lam, w)
    mu = np.maximum(fw_gaps(w, g), target) / m
    every = np.ones((gcount, m), dtype=bool)
    active = fw_gaps(w, g) > target
    stuck = np.zeros(gcount, dtype=bool)
    steps = np.zeros(gcount, dtype=np.intp)  # Newton steps at the current μ
    for _ in range(400):
        if not active.any():
            break
        gap = fw_gaps(w, g)
        # a group whose gap is within its central-path bound moves to the next μ
        ready = active & ((gap <= np.maximum(2 * m * mu, target)) | (steps >= 20))
        mu = np.where(ready, mu * 0.1, mu)
        steps = np.where(ready, 0, steps + 1)
        active &= (gap > target) & (m * mu > 1e-3 * target) & ~stuck
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        wa, ga, pa, mua = w[idx], g[idx], p[idx], mu[idx]
        gb = ga - mua[:, None] / wa
        h = _hessian(v[idx], pa, ga, lam) + np.einsum("gi,ij->gij", mua[:, None] / wa**2, np.eye(m))
        d = _kkt_solve(h, gb, every[idx])
        slope = np.einsum("gm,gm->g", gb, d)
        wrong = ~(slope < 0)
        if wrong.any():
            d[wrong] = _projected_descent(gb[wrong], every[idx][wrong])
            slope[wrong] = np.einsum("gm,gm->g", gb[wrong], d[wrong])
        ratio = np.where(d < 0, -wa / np.where(d < 0, d, -1.0), np.inf)
        alpha = np.minimum(1.0, 0.99 * ratio.min(axis=1))
        start = f[idx] - mua * np.log(wa).sum(axis=1)
        new_w, pending = _backtrack(
            v, mask, k, lam, idx, wa, d, alpha, start, slope, tries=30, floor=1e-300, mu=mua
        )
        # a group with no descent left in floating point is as close as the barrier gets:
        # Newton on its face takes over
        stuck[idx[pending]] = True
        w[idx] = new_w
        f[idx], g[idx], p[idx] = _evaluate(v[idx], mask[idx], k[idx], lam, new_w)
    return w


def _face_newton(
    v: FloatArray,
    mask: BoolArray,
    k: FloatArray,
    lam: float,
    w: FloatArray,
    free: BoolArray,
    target: FloatArray,
    steps: int = 30,
) -> FloatArray:
    """Newton on each group's face {w_j = 0 off ``free``} from ``w``, with a per-group
    Armijo line search that stays inside the simplex."""
    free = free.copy()
    w = np.where(free, w, 0.0)
    w /= w.sum(axis=1, keepdims=True)
    f, g, p = _evaluate(v, mask, k, lam, w)
    done = np.zeros(w.shape[0], dtype=bool)
    for _ in range(steps):
        mean = np.where(free, g, 0.0).sum(axis=1) / free.sum(axis=1)
        spread = np.where(free, np.abs(g - mean[:, None]), 0.0).max(axis=1)
        idx = np.flatnonzero((spread > target) & ~done)
        if idx.size == 0:
            break
        d = _kkt_solve(_hessian(v[idx], p[idx], g[idx], lam), g[idx], free[idx])
        slope = np.einsum("gm,gm->g", g[idx], d)
        keep = slope < -1e-15 * (1.0 + np.abs(f[idx]))
        idx, d, slope = idx[keep], d[keep], slope[keep]
        if idx.size == 0:
            break
        wa = w[idx]
        ratio = np.where(d < 0, -wa / np.where(d < 0, d, -1.0), np.inf)
        blocking = ratio.argmin(axis=1)
        alpha_max = ratio.min(axis=1)
        alpha = np.minimum(1.0, alpha_max)
        rows = np.arange(idx.size)
        # a step that reaches the face's edge lands on it exactly
        new_w, pending = _backtrack(
            v,
            mask,
            k,
            lam,
            idx,
            wa,
            d,
            alpha,
            f[idx],
            slope,
            tries=50,
            floor=0.0,
            edge=(alpha_max, blocking),
        )
        moved = np.ones(idx.size, dtype=bool)
        moved[pending] = False
        f_new = _evaluate(v[idx], mask[idx], k[idx], lam, new_w)[0]
        # a step that gains nothing in floating point ends that group's polish
        progress = moved & (f_new < f[idx] - 1e-15 * (1.0 + np.abs(f[idx])))
        done[idx[~progress]] = True
        moved &= progress
        if not moved.any():
            continue
        landed = moved & (alpha == alpha_max)
        free[idx[landed], blocking[rows[landed]]] = False
        idx = idx[moved]
        w[idx] = new_w[moved]
        f[idx], g[idx], p[idx] = _evaluate(v[idx], mask[idx], k[idx], lam, w[idx])
    return w


def solve_groups(
    v: FloatArray, mask: BoolArray, lam: float, target: FloatArray, accept: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weights (G × m) and their duality gaps for padded groups ``v`` (G × K × m) whose real
    candidates are ``mask`` (G × K). The caller certifies each gap against its tolerance."""
    k = mask.sum(axis=1).astype(np.float64)
    v = np.where(mask[:, :, None], v, 0.0)
    # the barrier only has to find the face: Newton on it then reaches ``target``
    w = _barrier(v, mask, k, lam, np.maximum(target, BARRIER * accept))
    support = w > 1e-9 * w.max(axis=1, keepdims=True)
    polished = _face_newton(v, mask, k, lam, w, support, target)
    gap_w = fw_gaps(w, _evaluate(v, mask, k, lam, w)[1])
    gap_p = fw_gaps(polished, _evaluate(v, mask, k, lam, polished)[1])
    better = gap_p <= gap_w
    out: FloatArray = np.where(better[:, None], polished, w)
    return out, np.where(better, gap_p, gap_w)
