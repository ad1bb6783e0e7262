"""RMOD's worst-case weights for many groups at once, vectorised over the groups.

Each group g has K_g candidate reward vectors (rows of ``values`` where ``mask`` is True) and
the same problem as :func:`rewardhub.aggregate.robust.robust_weights`:

    w*_g = argmin_{w ∈ Δ_m}  λ · log( (1/K_g) Σ_k exp(values[g, k] · w / λ) )

All groups take the same steps together: active-set Newton with an exact line search (the
method of :mod:`rewardhub.aggregate._robust_small`, vectorised: batched KKT solves on each
group's face, a batched one-dimensional Newton along each group's step). Every group's
answer is certified by the caller with the same duality gap as the single-group solver; a
group it leaves uncertified (none in the tests' sweeps) is solved again by that solver (which
certifies or raises), so the batched answer is never less exact than the loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rewardhub.types import FloatArray

BoolArray = npt.NDArray[np.bool_]
#: the line search stops once its Newton correction is this small relative to the step
STEP_TOL = 1e-3


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


def _line(
    s: FloatArray, r: FloatArray, mask: BoolArray, t_max: FloatArray, start: FloatArray
) -> FloatArray:
    """Per group, argmin_{0 ≤ t ≤ t_max} logsumexp(s + t·r) over its candidates along a
    descent direction: Newton on ψ(t) = log Σ_{r>0} r e^{s+tr} − log Σ_{r<0} |r| e^{s+tr}
    (f's stationary point on the line, nearly piecewise linear however hard the soft maximum
    is), from ``start``, safeguarded by a bracket; the batched twin of
    :func:`rewardhub.aggregate._robust_small._line`."""
    # s relative to its maximum: s itself can be ~|v|/λ while t·r is tiny near the optimum,
    # and s + t·r would keep only the leading digits of t·r
    s = s - np.where(mask, s, -np.inf).max(axis=1, keepdims=True)
    pos = mask & (r > 0)
    neg = mask & (r < 0)
    out = t_max.copy()  # no candidate rises along the direction: f falls to the edge
    t = np.minimum(start, t_max)
    lo = np.zeros_like(t)
    hi = t_max.copy()
    hi_known = np.zeros(t.shape, dtype=bool)
    both = pos.any(axis=1) & neg.any(axis=1)
    out[~neg.any(axis=1)] = 0.0  # not a descent direction after all: no step
    pending = np.flatnonzero(both)
    for _ in range(60):
        if pending.size == 0:
            break
        tp, rp = t[pending], r[pending]
        x = s[pending] + tp[:, None] * rp
        xp = np.where(pos[pending], x, -np.inf)
        xn = np.where(neg[pending], x, -np.inf)
        top_p, top_n = xp.max(axis=1), xn.max(axis=1)
        ep = rp * np.exp(xp - top_p[:, None])  # exp(−inf) = 0 off the side
        en = -rp * np.exp(xn - top_n[:, None])
        zp, zn = ep.sum(axis=1), en.sum(axis=1)
        psi = top_p - top_n + np.log(zp / zn)
        slope = np.einsum("gk,gk->g", ep, rp) / zp - np.einsum("gk,gk->g", en, rp) / zn
        below = psi < 0
        edge = below & (tp >= t_max[pending])  # still descending at the edge: step onto it
        lo[pending[below]] = tp[below]
        hi[pending[~below]] = tp[~below]
        hi_known[pending[~below]] = True
        nxt = tp - psi / slope
        lo_p, hi_p = lo[pending], hi[pending]
        # Newton's last correction is this small: take it without checking
        small = (lo_p <= nxt) & (nxt <= hi_p) & (np.abs(nxt - tp) <= STEP_TOL * tp)
        inside = (lo_p < nxt) & (nxt < hi_p)
        nxt = np.where(small | inside, nxt, np.where(hi_known[pending], 0.5 * (lo_p + hi_p), hi_p))
        t[pending] = np.where(edge, t_max[pending], nxt)
        finished = edge | small | ~np.isfinite(nxt)
        out[pending[finished]] = t[pending[finished]]
        pending = pending[~finished]
    out[pending] = t[pending]
    return out


def _active_set(
    v: FloatArray,
    mask: BoolArray,
    k: FloatArray,
    lam: float,
    target: FloatArray,
    max_iter: int = 100,
) -> tuple[FloatArray, FloatArray]:
    """Active-set Newton with an exact line search for every group at once (the method of
    :mod:`rewardhub.aggregate._robust_small`, vectorised): each step takes Newton's direction
    on the face of w's support (plus the Frank–Wolfe vertex when it beats the face) and
    minimises f along it up to the face's edge. Returns the weights and their gaps."""
    gcount, _, m = v.shape
    w = np.full((gcount, m), 1.0 / m)
    done = np.zeros(gcount, dtype=bool)
    rows_all = np.arange(gcount)
    _, g, p = _evaluate(v, mask, k, lam, w)
    gap = fw_gaps(w, g)
    for _ in range(max_iter):
        idx = np.flatnonzero((gap > target) & ~done)
        if idx.size == 0:
            break
        wa, ga, pa, va = w[idx], g[idx], p[idx], v[idx]
        face = wa > 0
        face_min = np.where(face, ga, np.inf).min(axis=1)
        spread = np.where(face, ga, -np.inf).max(axis=1) - face_min
        mean = np.where(face, ga, 0.0).sum(axis=1) / face.sum(axis=1)
        outside = np.where(face, np.inf, ga)
        enter = outside.argmin(axis=1)
        g_enter = outside.min(axis=1)
        with np.errstate(invalid="ignore"):
            release = np.isfinite(g_enter) & (
                (g_enter < face_min) | (spread <= np.maximum(target[idx], 0.01 * (mean - g_enter)))
            )
        rows = rows_all[: idx.size]
        face[rows[release], enter[release]] = True
        with np.errstate(all="ignore"):
            d = _kkt_solve(_hessian(va, pa, ga, lam), ga, face)
        # no usable curvature, or Newton pushes the entering coordinate negative: the
        # projected gradient (the exact line search still walks it to a kink)
        # the saddle-point solve keeps Σ d = 0 only to its own (relative) accuracy, and near
        # the optimum ∇f·d is mostly that error times ∇f's level: project it back
        d = np.where(face, d - (d.sum(axis=1) / face.sum(axis=1))[:, None], 0.0)
        bad = ~np.isfinite(d).all(axis=1) | (face & (wa <= 0) & (d < 0)).any(axis=1)
        if bad.any():
            d[bad] = _projected_descent(ga[bad], face[bad])
        # a nearly one-hot softmax has almost no curvature and Newton's step can be huge: the
        # direction matters, its length only says where the line search starts
        size = np.abs(d).max(axis=1)
        reach = np.maximum(size, 1.0)  # where Newton's own step ends along the scaled d
        d /= reach[:, None]
        slope = np.einsum("gm,gm->g", ga - mean[:, None], d)  # ∇f·d, Σ d = 0
        ratio = np.where(d < 0, -wa / np.where(d < 0, d, -1.0), np.inf)
        block = ratio.argmin(axis=1)
        t_max = ratio.min(axis=1)
        r = np.einsum("gkm,gm->gk", va, d) / lam
        s = np.einsum("gkm,gm->gk", va, wa) / lam
        with np.errstate(all="ignore"):
            t = _line(s, r, mask[idx], t_max, reach)
        t = np.where(slope < 0, t, 0.0)
        new = np.maximum(wa + t[:, None] * d, 0.0)
        hit = (t >= t_max) & (t > 0)
        new[rows[hit], block[hit]] = 0.0  # the step ends on this face
        new /= new.sum(axis=1, keepdims=True)
        stuck = ~(t > 0) | (new == wa).all(axis=1)
        done[idx[stuck]] = True
        moved = idx[~stuck]
        w[moved] = new[~stuck]
        _, g[moved], p[moved] = _evaluate(v[moved], mask[moved], k[moved], lam, w[moved])
        gap[moved] = fw_gaps(w[moved], g[moved])
    return w, gap


def solve_groups(
    v: FloatArray, mask: BoolArray, lam: float, target: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weights (G × m) and their duality gaps for padded groups ``v`` (G × K × m) whose real
    candidates are ``mask`` (G × K), aiming at gaps ≤ ``target``. The caller certifies each
    gap against its tolerance (and solves an uncertified group again by itself)."""
    k = mask.sum(axis=1).astype(np.float64)
    v = np.where(mask[:, :, None], v, 0.0)
    return _active_set(v, mask, k, lam, target)
