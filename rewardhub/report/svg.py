"""Small inline-SVG charts for the report and the dashboard: no scripts, no network.

Every chart is one ``<svg class="chart">`` whose ``data-marks`` attribute counts the marks it
drew (bars, cells, points, line vertices), so a browser test can tell an empty chart from a
drawn one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from rewardhub.types import FloatArray

W, H = 420, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 28, 40
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")


def _frame(title: str, marks: int, body: list[str], width: int = W, height: int = H) -> str:
    return (
        f'<svg class="chart" data-marks="{marks}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" class="t">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _empty(title: str, why: str) -> str:
    return _frame(
        title, 0, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">{escape(why)}</text>']
    )


class _Axes:
    """Linear maps from data to the plot area, and the axis lines with a few ticks."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], w: int = W, h: int = H) -> None:
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys)
        self.w, self.h = w, h

    def x(self, v: float) -> float:
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * (self.w - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return self.h - BOTTOM - (v - self.y0) / (self.y1 - self.y0) * (self.h - TOP - BOTTOM)

    def draw(self, xlabel: str, ylabel: str) -> list[str]:
        b, r = self.h - BOTTOM, self.w - RIGHT
        out = [f'<path d="M{LEFT},{TOP} V{b} H{r}" class="ax"/>']
        for v in np.linspace(self.x0, self.x1, 5):
            out.append(
                f'<text x="{self.x(v):.1f}" y="{b + 14}" text-anchor="middle">{_g(v)}</text>'
            )
        for v in np.linspace(self.y0, self.y1, 5):
            out.append(
                f'<text x="{LEFT - 4}" y="{self.y(v) + 4:.1f}" text-anchor="end">{_g(v)}</text>'
            )
        out.append(
            f'<text x="{(LEFT + r) / 2:.0f}" y="{self.h - 6}" text-anchor="middle">'
            f"{escape(xlabel)}</text>"
        )
        out.append(
            f'<text transform="translate(12,{(TOP + b) / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>'
        )
        return out


def _span(vals: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(vals, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return 0.0, 1.0
    lo, hi = float(a.min()), float(a.max())
    if hi == lo:
        return lo - 0.5, hi + 0.5
    return lo, hi


def _g(v: float) -> str:
    return f"{v:.3g}"


def histogram(values: FloatArray, title: str, bins: int = 30) -> str:
    """Counts of the finite ``values`` in equal-width bins."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return _empty(title, "no values")
    lo, hi = _span(v.tolist())
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    ax = _Axes([lo, hi], [0.0, float(counts.max())])
    body = ax.draw("value", "samples")
    bw = (ax.x(edges[1]) - ax.x(edges[0])) * 0.92
    marks = 0
    for c, e in zip(counts.tolist(), edges[:-1].tolist()):
        if c:
            marks += 1
            body.append(
                f'<rect x="{ax.x(e):.1f}" y="{ax.y(c):.1f}" width="{bw:.1f}" '
                f'height="{ax.y(0) - ax.y(c):.1f}" fill="{PALETTE[0]}"><title>{c}</title></rect>'
            )
    return _frame(title, marks, body)


def heatmap(names: Sequence[str], matrix: Sequence[Sequence[float | None]], title: str) -> str:
    """A k × k matrix in [−1, 1] (blue negative, red positive), numbers in the cells."""
    k = len(names)
    if not k:
        return _empty(title, "nothing to compare")
    cell = max(24, min(60, 300 // k))
    left, top = 110, 30
    width, height = left + cell * k + 10, top + cell * k + 90
    body = []
    marks = 0
    for i, row in enumerate(matrix):
        for j, x in enumerate(row):
            fill = "#eee" if x is None else _diverging(x)
            marks += 1
            label = "–" if x is None else f"{x:.2f}"
            body.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" '
                f'height="{cell}" fill="{fill}" class="cell"><title>{escape(names[i])} / '
                f"{escape(names[j])}: {label}</title></rect>"
                f'<text x="{left + j * cell + cell / 2}" y="{top + i * cell + cell / 2 + 4}" '
                f'text-anchor="middle" font-size="10">{label}</text>'
            )
    for i, n in enumerate(names):
        body.append(
            f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end">'
            f"{escape(n[:16])}</text>"
            f'<text transform="translate({left + i * cell + cell / 2},{top + k * cell + 6}) '
            f'rotate(50)">{escape(n[:16])}</text>'
        )
    return _frame(title, marks, body, width, height)


def _diverging(x: float) -> str:
    t = max(-1.0, min(1.0, x))
    if t >= 0:
        r, g, b = 255, int(255 - 160 * t), int(255 - 170 * t)
    else:
        r, g, b = int(255 + 170 * t), int(255 + 120 * t), 255
    return f"rgb({r},{g},{b})"


def scatter(
    x: FloatArray, y: FloatArray, front: FloatArray, title: str, xlabel: str, ylabel: str
) -> str:
    """Points (already downsampled by the caller) and the front ``front`` (m × 2, sorted by x)
    drawn as a highlighted step line with its points."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return _empty(title, "no sample has both values")
    ax = _Axes(
        np.concatenate([x[ok], front[:, 0]]).tolist(), np.concatenate([y[ok], front[:, 1]]).tolist()
    )
    body = ax.draw(xlabel, ylabel)
    pts = "".join(f"M{ax.x(a):.1f},{ax.y(b):.1f}h0" for a, b in zip(x[ok], y[ok]))
    body.append(
        f'<path d="{pts}" stroke="{PALETTE[0]}" stroke-opacity="0.5" stroke-width="4" '
        'stroke-linecap="round" class="points"/>'
    )
    if len(front):
        line = " ".join(f"{ax.x(a):.1f},{ax.y(b):.1f}" for a, b in front)
        body.append(
            f'<polyline points="{line}" fill="none" stroke="{PALETTE[3]}" stroke-width="2"/>'
        )
        body += [
            f'<circle cx="{ax.x(a):.1f}" cy="{ax.y(b):.1f}" r="3.5" fill="{PALETTE[3]}"/>'
            for a, b in front
        ]
    return _frame(title, int(ok.sum()) + len(front), body)


def bars(
    labels: Sequence[str], series: dict[str, Sequence[float]], title: str, unit: str = "%"
) -> str:
    """Horizontal stacked bars: one row per label, one colour per series."""
    if not labels:
        return _empty(title, "nothing to show")
    row = 22
    left, top = 120, 30
    width = W
    height = max(H // 2, top + row * len(labels) + 30 + 16 * len(series))
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top_value = max([*totals, 1e-12])
    scale = (width - left - 50) / top_value  # room for the total after the bar
    body, marks = [], 0
    for i, lab in enumerate(labels):
        x = float(left)
        yy = top + i * row
        body.append(
            f'<text x="{left - 4}" y="{yy + 15}" text-anchor="end">{escape(lab[:18])}</text>'
        )
        for c, (name, vals) in enumerate(series.items()):
            v = float(vals[i])
            if v > 0:
                marks += 1
                body.append(
                    f'<rect x="{x:.1f}" y="{yy + 3}" width="{v * scale:.1f}" height="{row - 6}" '
                    f'fill="{PALETTE[c % len(PALETTE)]}"><title>{escape(lab)} {escape(name)}: '
                    f"{v:.4g}{unit}</title></rect>"
                )
                x += v * scale
        body.append(f'<text x="{x + 3:.1f}" y="{yy + 15}">{totals[i]:.3g}{unit}</text>')
    ly = top + row * len(labels) + 14
    for c, name in enumerate(series):
        body.append(
            f'<rect x="{left}" y="{ly + 16 * c - 9}" width="10" height="10" '
            f'fill="{PALETTE[c % len(PALETTE)]}"/><text x="{left + 14}" y="{ly + 16 * c}">'
            f"{escape(name)}</text>"
        )
    return _frame(title, marks, body, width, height)


def lines(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> str:
    """One polyline with markers per ``(name, xs, ys)``, and a legend."""
    xs = [v for _, x, _ in series for v in x]
    ys = [v for _, _, y in series for v in y]
    if not any(math.isfinite(v) for v in ys):
        return _empty(title, "no curve")
    height = H + 16 * len(series)
    ax = _Axes(xs, ys, W, H)
    body = ax.draw(xlabel, ylabel)
    marks = 0
    for c, (name, x, y) in enumerate(series):
        color = PALETTE[c % len(PALETTE)]
        pts = [(a, b) for a, b in zip(x, y) if math.isfinite(a) and math.isfinite(b)]
        marks += len(pts)
        body.append(
            f'<polyline points="{" ".join(f"{ax.x(a):.1f},{ax.y(b):.1f}" for a, b in pts)}" '
            f'fill="none" stroke="{color}" stroke-width="2"/>'
        )
        body += [
            f'<circle cx="{ax.x(a):.1f}" cy="{ax.y(b):.1f}" r="3" fill="{color}"/>' for a, b in pts
        ]
        body.append(
            f'<rect x="{LEFT}" y="{H + 16 * c - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{LEFT + 14}" y="{H + 16 * c}">{escape(name)}</text>'
        )
    return _frame(title, marks, body, W, height)
