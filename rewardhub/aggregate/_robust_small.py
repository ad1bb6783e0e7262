"""RMOD's worst-case weights for one instance: active-set Newton with an exact line search,
on plain Python floats for small instances (the GRPO shape, K·m² ≤ :data:`MAX_WORK`, where a
numpy call costs more than the arithmetic it does) and on numpy vectors for larger ones.

Same problem as :func:`rewardhub.aggregate.robust.robust_weights`:

    w* = argmin_{w ∈ Δ_m}  λ · log( (1/K) Σ_k exp(values[k] · w / λ) )

Method: active-set Newton with an *exact* line search. Each step works on the face spanned by
w's support (plus, when the Frank–Wolfe vertex beats the face, that one coordinate), takes the
Newton direction of f on the face in reduced coordinates (the covariance of column
differences, centred so that a nearly one-hot softmax keeps its tiny curvature), and then
minimises f along the direction up to the face's boundary. The one-dimensional minimisation
is Newton on ψ(t) = log Σ_{r_k>0} r_k e^{x_k(t)} − log Σ_{r_k<0} |r_k| e^{x_k(t)}, whose root
is f's stationary point on the line and which is nearly piecewise linear however large |v|/λ
is: where the soft maximum is nearly hard (the case that stalls a backtracking Newton) a step
walks to the next kink of the piecewise-linear max, like a simplex pivot, and Newton's
quadratic convergence takes over once the tied candidates are found.

The caller certifies the answer by its duality gap (the Frank–Wolfe gap, as
:func:`rewardhub.aggregate.robust.duality_gap` computes it; :func:`gap` here) and falls back
to the other solvers where it is not certified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import mul
from typing import Any, Protocol

import numpy as np

from rewardhub.types import FloatArray

exp = math.exp
log = math.log

#: the line search stops once its Newton correction is this small relative to the step
STEP_TOL = 1e-3
#: the largest K·m² solved with :class:`Lists`; above it :class:`Arrays` (Python's cost grows
#: with K·m², numpy's per call is flat: measured 82 vs 102 µs at 8 × 3, 137 vs 94 µs at 16 × 3)
MAX_WORK = 100
#: the exact line search landing this close (relative) to Newton's own step starts Newton's
#: local phase, whose steps need no search
PURE = 0.6


def _gradient(
    cols: list[list[float]], s: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """p = softmax(s), g = valuesᵀp, and e = exp(s − max s) (unnormalised p)."""
    top = max(s)
    e = [exp(x - top) for x in s]
    z = sum(e)
    p = [x / z for x in e]
    return p, [sum(map(mul, p, c)) for c in cols], e


def _solve_spd(h: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Cholesky solve of a small symmetric positive semi-definite system, with a relative
    ridge; None when it is numerically zero (no curvature to use)."""
    n = len(rhs)
    if n == 1:
        a = h[0][0]
        x1 = rhs[0] / a if a > 0 else math.inf
        return [x1] if math.isfinite(x1) else None
    trace = sum(h[i][i] for i in range(n))
    if not trace > 0:
        return None
    ridge = 1e-13 * trace
    if n == 2:
        a, b, c = h[0][0] + ridge, h[1][0], h[1][1] + ridge
        det = a * c - b * b
        if not det > 0:
            return None
        x0, x1 = (c * rhs[0] - b * rhs[1]) / det, (a * rhs[1] - b * rhs[0]) / det
        return [x0, x1] if math.isfinite(x0) and math.isfinite(x1) else None
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        row = low[i]
        for j in range(i + 1):
            acc = h[i][j] - sum(map(mul, row[:j], low[j][:j]))
            if i == j:
                acc += ridge
                if not acc > 0:
                    return None
                row[i] = math.sqrt(acc)
            else:
                row[j] = acc / low[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (rhs[i] - sum(map(mul, low[i][:i], y[:i]))) / low[i][i]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        x[i] = (y[i] - sum(low[j][i] * x[j] for j in range(i + 1, n))) / low[i][i]
    return x if all(map(math.isfinite, x)) else None


def _root(psi: Callable[[float], tuple[float, float]], t_max: float, start: float) -> float:
    """The root of the increasing ψ in (0, t_max] (t_max itself where ψ < 0 there): Newton from
    ``start``, safeguarded by the bracket it keeps."""
    lo, hi = 0.0, t_max
    hi_known = False
    t = min(start, t_max)
    for _ in range(60):
        value, slope = psi(t)
        if value < 0:
            if t >= t_max:  # still descending at the edge: step onto it
                return t_max
            lo = t
        else:
            hi, hi_known = t, True
        if not slope > 0:  # ψ' underflowed: no resolution left on this line
            break
        nxt = t - value / slope
        if lo <= nxt <= hi and abs(nxt - t) <= STEP_TOL * t:
            return nxt  # Newton's last correction is this small: take it without checking
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi) if hi_known else hi
        t = nxt
    return t


class Problem(Protocol):
    """One instance as :func:`solve` sees it: the K-long vectors (s, p, r) are the
    implementation's own, the m-long ones (w, g, d) plain lists."""

    m: int

    def at(self, w: list[float]) -> Any: ...
    def gradient(self, s: Any) -> tuple[Any, list[float]]: ...
    def newton(
        self, p: Any, g: list[float], w: list[float], face: list[int]
    ) -> list[float] | None: ...
    def along(self, d: list[float]) -> Any: ...
    def line(self, s: Any, r: Any, t_max: float, start: float) -> tuple[float, Any]: ...


class Lists:
    """The instance as plain Python lists: for small K·m, where a numpy call costs more than
    the arithmetic it does."""

    def __init__(self, values: list[list[float]], lam: float) -> None:
        self.rows = values
        self.cols = [list(c) for c in zip(*values)]
        self.lam = lam
        self.inv = 1.0 / lam
        self.m = len(values[0])

    def at(self, w: list[float]) -> list[float]:
        """s = values·w / λ."""
        inv = self.inv
        return [sum(map(mul, row, w)) * inv for row in self.rows]

    def gradient(self, s: list[float]) -> tuple[list[float], list[float]]:
        """p = softmax(s) and g = valuesᵀp."""
        p, g, _ = _gradient(self.cols, s)
        return p, g

    def newton(
        self, p: list[float], g: list[float], w: list[float], face: list[int]
    ) -> list[float] | None:
        return _newton(self.cols, p, g, w, face, self.lam)

    def along(self, d: list[float]) -> list[float]:
        """r = values·d / λ: how s moves along d."""
        return self.at(d)

    def line(
        self, s: list[float], r: list[float], t_max: float, start: float
    ) -> tuple[float, list[float]]:
        """argmin_{0 ≤ t ≤ t_max} logsumexp(s + t·r) along a descent direction, and s + t·r."""
        t = _line(s, r, t_max, start)
        return t, [a + t * b for a, b in zip(s, r)]


class Arrays:
    """The same instance as numpy arrays: for larger K·m, where numpy's flat per-call cost
    beats Python's per-element one."""

    def __init__(self, values: FloatArray, lam: float) -> None:
        self.v = values
        self.lam = lam
        self.m = values.shape[1]

    def at(self, w: list[float]) -> FloatArray:
        s: FloatArray = self.v @ np.asarray(w) / self.lam
        return s

    def gradient(self, s: FloatArray) -> tuple[FloatArray, list[float]]:
        e = np.exp(s - s.max())
        p: FloatArray = e / e.sum()
        g: list[float] = (p @ self.v).tolist()
        return p, g

    def newton(
        self, p: FloatArray, g: list[float], w: list[float], face: list[int]
    ) -> list[float] | None:
        """As :func:`_newton`: the reduced Hessian is the covariance under p of the column
        differences v_a − v_pivot, centred, over λ."""
        if len(face) < 2:
            return None
        pivot = max(face, key=w.__getitem__)
        others = [a for a in face if a != pivot]
        gp = g[pivot]
        grad = np.array([g[a] for a in others])
        grad -= gp
        # in place on the one copy the fancy index makes (~25% of a step's numpy calls)
        centred = self.v[:, others]
        centred -= self.v[:, pivot, None]
        centred -= grad
        h = (centred.T * p) @ centred
        h /= self.lam
        n = len(others)
        if n <= 2:
            return _embed(h.tolist(), g, gp, pivot, others, len(w))
        trace = float(h.trace())
        if not trace > 0:
            return None
        h.flat[:: n + 1] += 1e-13 * trace
        try:  # LAPACK beats the Python Cholesky from 3 × 3
            y = np.linalg.solve(h, -grad).tolist()
        except np.linalg.LinAlgError:
            return None
        d = [0.0] * len(w)
        for a, ya in zip(others, y):
            d[a] = ya
        d[pivot] = -sum(y)
        return d if all(map(math.isfinite, d)) else None

    def along(self, d: list[float]) -> FloatArray:
        return self.at(d)

    def line(
        self, s: FloatArray, r: FloatArray, t_max: float, start: float
    ) -> tuple[float, FloatArray]:
        s = s - s.max()  # see :func:`_line`
        if not (r > 0).any():
            return t_max, s + t_max * r

        def psi(t: float) -> tuple[float, float]:
            x = s + t * r
            x -= x.max()
            re = r * np.exp(x)
            up, down = np.maximum(re, 0.0), np.minimum(re, 0.0)  # r_k e^{x_k} by sign of r_k
            zp, zn = float(up.sum()), -float(down.sum())
            if not (zp > 0 and zn > 0):  # one side underflowed under the common shift
                return _psi_apart(x, r)
            return log(zp) - log(zn), float(up @ r) / zp + float(down @ r) / zn

        t = _root(psi, t_max, start)
        out: FloatArray = s + t * r
        return t, out


def _psi_apart(x: FloatArray, r: FloatArray) -> tuple[float, float]:
    """ψ at x with each sign of r shifted by its own maximum (no side underflows)."""
    pos, neg = r > 0, r < 0
    if not neg.any():
        return math.inf, 1.0
    xp, xn = x[pos], x[neg]
    tp, tn = float(xp.max()), float(xn.max())
    ep = r[pos] * np.exp(xp - tp)
    en = -r[neg] * np.exp(xn - tn)
    zp, zn = float(ep.sum()), float(en.sum())
    return tp - tn + log(zp) - log(zn), float(ep @ r[pos]) / zp - float(en @ r[neg]) / zn


def _line(s: list[float], r: list[float], t_max: float, start: float) -> float:
    """argmin_{0 ≤ t ≤ t_max} logsumexp(s + t·r) for a descent direction (Σ p_k r_k < 0 at
    t = 0): the root of ψ (see the module docstring)."""
    # s relative to its maximum: s itself can be ~|v|/λ while t·r is tiny near the optimum,
    # and s + t·r would keep only the leading digits of t·r
    top = max(s)
    s = [x - top for x in s]
    pos = [k for k, rk in enumerate(r) if rk > 0]
    if not pos:  # f decreases all the way to the face's edge
        return t_max
    neg = [k for k, rk in enumerate(r) if rk < 0]
    rp = [r[k] for k in pos]
    rn = [-r[k] for k in neg]
    sp = [s[k] for k in pos]
    sn = [s[k] for k in neg]

    def psi(t: float) -> tuple[float, float]:
        # each sign of r shifted by its own maximum (neither side underflows); one fused
        # pass per side (cheaper than list-and-sum at the few candidates a side has)
        xp = [a + t * b for a, b in zip(sp, rp)]
        tp = max(xp)
        zp = zp1 = 0.0
        for x, b in zip(xp, rp):
            e = b * exp(x - tp)
            zp += e
            zp1 += e * b
        xn = [a - t * b for a, b in zip(sn, rn)]
        tn = max(xn)
        zn = zn1 = 0.0
        for x, b in zip(xn, rn):
            e = b * exp(x - tn)
            zn += e
            zn1 += e * b
        # ψ' = E_{q+}[r] − E_{q−}[r] ≥ min r⁺ + min |r⁻| > 0
        return tp - tn + log(zp) - log(zn), zp1 / zp + zn1 / zn

    return _root(psi, t_max, start)


def solve(
    problem: Problem, target: float, max_iter: int, start: list[float] | None = None
) -> list[float]:
    """Weights for one instance, aiming at a duality gap ≤ ``target``, from ``start`` (its
    support is the first face; the simplex's centre by default). Certification is the
    caller's (see :func:`gap`)."""
    m = problem.m
    w = [1.0 / m] * m if start is None else start
    s: Any = problem.at(w)
    every = range(m)
    # Newton's local phase: while the exact line search keeps landing on Newton's own step,
    # the next step takes that step without a search; trusted only while the gap falls
    pure, trusted = False, True
    last_gap = math.inf
    for _ in range(max_iter):
        p, g = problem.gradient(s)
        g_min = min(g)
        gap = sum(map(mul, w, g)) - g_min
        if gap <= target:
            break
        if pure and not gap < last_gap:
            pure = trusted = False  # the pure step did not help: search from here on
        last_gap = gap
        face = [j for j in every if w[j] > 0.0]
        g_face = [g[j] for j in face]
        face_min = min(g_face)
        spread = max(g_face) - face_min
        enter = -1
        if len(face) < m:
            enter = min((j for j in every if w[j] <= 0.0), key=g.__getitem__)
            mean = sum(g_face) / len(g_face)
            if g[enter] < face_min or spread <= max(target, 0.01 * (mean - g[enter])):
                face.append(enter)  # the Frank–Wolfe vertex beats the face: let it in
            else:
                enter = -1
        d = problem.newton(p, g, w, face)
        is_newton = d is not None
        if d is None or (enter >= 0 and d[enter] < 0):
            is_newton = False
            # no curvature, or Newton would push the entering coordinate negative: the
            # projected gradient (with the exact line search it still walks to a kink)
            mean = sum(g[j] for j in face) / len(face)
            d = [0.0] * m
            for j in face:
                d[j] = mean - g[j]
        # a nearly one-hot softmax has almost no curvature, so Newton's step can be huge:
        # the direction matters, its length only says where the line search starts
        size = max(map(abs, d))
        reach = 1.0  # where Newton's own step ends, in units of the scaled d
        if size > 1.0:
            reach = size
            d = [x / size for x in d]
        level = g[face[0]]
        if not sum((g[j] - level) * d[j] for j in face) < 0:  # ∇f·d, as Σ d = 0
            break  # no descent direction left in floating point
        t_max, block = math.inf, -1
        for j in face:
            if d[j] < 0 and -w[j] / d[j] < t_max:
                t_max, block = -w[j] / d[j], j
        if pure and is_newton and reach < t_max:
            t, s_new = reach, None
        else:
            t, s_new = problem.line(s, problem.along(d), t_max, reach)
            pure = trusted and is_newton and t < t_max and abs(t - reach) <= PURE * reach
        if not t > 0:
            break
        new = list(w)
        for j in face:
            new[j] = max(w[j] + t * d[j], 0.0)
        if t >= t_max:
            new[block] = 0.0  # the step ends on this face
        if new == w:
            break
        total = sum(new)
        w = [x / total for x in new]
        s = s_new if total == 1.0 and s_new is not None else problem.at(w)
    return w


def _newton(
    cols: list[list[float]],
    p: list[float],
    g: list[float],
    w: list[float],
    face: list[int],
    lam: float,
) -> list[float] | None:
    """Newton's direction for f on ``face`` (Σ d = 0, zero off the face), in the coordinates
    y_a = d_a (a ≠ pivot), d_pivot = −Σ y: there ∇²f is the covariance under p of the column
    differences v_a − v_pivot, over λ (computed centred), and ∇f is g_a − g_pivot."""
    if len(face) < 2:
        return None
    pivot = max(face, key=w.__getitem__)
    others = [a for a in face if a != pivot]
    base = cols[pivot]
    gp = g[pivot]
    n = len(others)
    if n <= 2:  # faces of 2 or 3 (every face at m = 3): one fused pass over the candidates
        a, b = others[0], others[-1]
        ga, gb = g[a] - gp, g[b] - gp
        haa = hab = hbb = 0.0
        for pk, xa, xb, y in zip(p, cols[a], cols[b], base):
            da = xa - y - ga
            db = xb - y - gb
            q = pk * da
            haa += q * da
            hab += q * db
            hbb += pk * db * db
        h = [[haa / lam]] if n == 1 else [[haa / lam, hab / lam], [hab / lam, hbb / lam]]
        return _embed(h, g, gp, pivot, others, len(w))
    centred = [[x - y - (g[a] - gp) for x, y in zip(cols[a], base)] for a in others]
    weighted = [list(map(mul, p, c)) for c in centred]
    h = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            h[i][j] = h[j][i] = sum(map(mul, weighted[i], centred[j])) / lam
    return _embed(h, g, gp, pivot, others, len(w))


def _embed(
    h: list[list[float]], g: list[float], gp: float, pivot: int, others: list[int], m: int
) -> list[float] | None:
    """Solve the reduced Newton system and write y back as d (d_pivot = −Σ y)."""
    y = _solve_spd(h, [gp - g[a] for a in others])
    if y is None:
        return None
    d = [0.0] * m
    for a, ya in zip(others, y):
        d[a] = ya
    d[pivot] = -sum(y)
    return d if math.isfinite(d[pivot]) else None


def gap(values: list[list[float]], lam: float, w: list[float]) -> float:
    """The duality (Frank–Wolfe) gap of ``w``, computed from scratch as
    :func:`rewardhub.aggregate.robust.duality_gap` does."""
    cols = [list(c) for c in zip(*values)]
    s = [sum(map(mul, row, w)) / lam for row in values]
    _, g, _ = _gradient(cols, s)
    return max(0.0, float(sum(map(mul, w, g))) - min(g))
