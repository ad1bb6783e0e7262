"""The numbers of an evaluation on preference pairs, on plain arrays.

- :func:`pair_outcomes`: per pair, 1 when the preferred side scored higher, ½ on a tie (as
  RewardBench's generative scoring counts them), 0 when lower, NaN when a side has no value.
- :func:`accuracy`: the mean over scored pairs and over all pairs (an unscored pair counts as
  wrong), each with a percentile bootstrap 95 % interval. The statistic only takes the values
  0, ½ and 1, so resampling the pairs is exactly resampling the three counts from a multinomial:
  the bootstrap costs O(resamples), not O(resamples × pairs).
- :func:`spearman_matrix`, :func:`agreement_matrix`: how objectives relate over completions,
  and how often two columns prefer the same side of a pair.
- :func:`calibration`: reliability table and expected calibration error (ECE) of the
  probabilities a column gives that the preferred side wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from rewardhub.types import FloatArray

#: bootstrap resamples used unless told otherwise
RESAMPLES = 2000


def pair_outcomes(preferred: FloatArray, other: FloatArray) -> FloatArray:
    """1, ½ or 0 per pair as ``preferred`` is above, equal to or below ``other``; NaN when
    either is NaN (no value)."""
    a = np.asarray(preferred, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    out = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
    out[np.isnan(a) | np.isnan(b)] = np.nan
    return out


@dataclass(frozen=True)
class Accuracy:
    """Pairwise accuracy of one column, on the scored pairs and on all labelled pairs."""

    scored: float
    scored_ci: tuple[float, float]
    all: float
    all_ci: tuple[float, float]
    n_scored: int
    n_pairs: int
    ties: int

    def to_dict(self) -> dict[str, object]:
        return {
            "accuracy_scored": _num(self.scored),
            "ci_scored": [_num(x) for x in self.scored_ci],
            "accuracy_all": _num(self.all),
            "ci_all": [_num(x) for x in self.all_ci],
            "n_scored": self.n_scored,
            "n_pairs": self.n_pairs,
            "ties": self.ties,
        }


def accuracy(outcomes: FloatArray, *, resamples: int = RESAMPLES, seed: int = 0) -> Accuracy:
    """Accuracy of per-pair ``outcomes`` (from :func:`pair_outcomes`; NaN = unscored)."""
    o = np.asarray(outcomes, dtype=np.float64)
    scored = o[~np.isnan(o)]
    wins = int(np.count_nonzero(scored == 1.0))
    ties = int(np.count_nonzero(scored == 0.5))
    losses = int(scored.size) - wins - ties
    unscored = int(o.size) - int(scored.size)
    rng = np.random.default_rng(seed)
    return Accuracy(
        scored=(wins + 0.5 * ties) / scored.size if scored.size else math.nan,
        scored_ci=_interval((wins, ties, losses), resamples, rng),
        all=(wins + 0.5 * ties) / o.size if o.size else math.nan,
        all_ci=_interval((wins, ties, losses + unscored), resamples, rng),
        n_scored=int(scored.size),
        n_pairs=int(o.size),
        ties=ties,
    )


def _interval(
    counts: tuple[int, int, int], resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of (wins + ½ ties) / n from the three counts."""
    n = sum(counts)
    if n == 0:
        return (math.nan, math.nan)
    draws = rng.multinomial(n, np.array(counts, dtype=np.float64) / n, size=resamples)
    stat = (draws[:, 0] + 0.5 * draws[:, 1]) / n
    lo, hi = np.percentile(stat, [2.5, 97.5])
    return float(lo), float(hi)


def spearman_matrix(values: FloatArray) -> FloatArray:
    """k × k Spearman correlations of the columns of ``values`` (rows with NaN in either
    column are left out pairwise; NaN where fewer than 3 rows remain or a column is constant)."""
    v = np.asarray(values, dtype=np.float64)
    k = v.shape[1]
    out = np.full((k, k), np.nan)
    ok = ~np.isnan(v)
    for a in range(k):
        for b in range(a, k):
            both = ok[:, a] & ok[:, b]
            if np.count_nonzero(both) < 3:
                continue
            ra = _ranks(v[both, a])
            rb = _ranks(v[both, b])
            if ra.std() == 0 or rb.std() == 0:
                continue
            out[a, b] = out[b, a] = float(np.corrcoef(ra, rb)[0, 1])
    return out


def _ranks(x: FloatArray) -> FloatArray:
    """Ranks 1..n, ties sharing their average rank (scipy's ``rankdata``, without loading
    scipy.stats)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average: FloatArray = (ends - counts + 1 + ends) / 2.0
    return average[inverse]


def agreement_matrix(outcomes: FloatArray) -> FloatArray:
    """k × k share of pairs on which two columns of per-pair ``outcomes`` (pairs × k) give the
    same verdict (both prefer the same side, or both tie), over the pairs both scored."""
    o = np.asarray(outcomes, dtype=np.float64)
    k = o.shape[1]
    out = np.full((k, k), np.nan)
    for a in range(k):
        for b in range(a, k):
            both = ~np.isnan(o[:, a]) & ~np.isnan(o[:, b])
            if both.any():
                out[a, b] = out[b, a] = float(np.mean(o[both, a] == o[both, b]))
    return out


@dataclass(frozen=True)
class Calibration:
    """Reliability table (per confidence bin: pairs, mean confidence, accuracy) and ECE."""

    bins: list[tuple[float, float, int, float, float]]  # (lo, hi, count, confidence, accuracy)
    ece: float
    n: int

    def to_dict(self) -> dict[str, object]:
        return {
            "ece": _num(self.ece),
            "n": self.n,
            "bins": [
                {"lo": lo, "hi": hi, "count": c, "confidence": _num(cf), "accuracy": _num(ac)}
                for lo, hi, c, cf, ac in self.bins
            ],
        }


def win_probability(
    mean_a: FloatArray, std_a: FloatArray, mean_b: FloatArray, std_b: FloatArray
) -> FloatArray:
    """P(a > b) for independent normals: Φ((μa − μb) / √(σa² + σb²)); 1, ½ or 0 when both
    stds are 0."""
    diff = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    scale = np.sqrt(np.square(std_a) + np.square(std_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(
            scale > 0, ndtr(diff / np.where(scale > 0, scale, 1.0)), 0.5 + 0.5 * np.sign(diff)
        )
    return np.asarray(p, dtype=np.float64)


def calibration(p_preferred: FloatArray, bins: int = 10) -> Calibration:
    """Reliability of the probabilities ``p_preferred`` that the labelled-preferred side wins.

    Each pair is judged by the side the probability favours, with confidence max(p, 1 − p) in
    [½, 1]; the table bins the confidence, and ECE = Σ_b (n_b / n) |accuracy_b − confidence_b|.
    A probability of exactly ½ counts as half right.
    """
    p = np.asarray(p_preferred, dtype=np.float64)
    p = p[np.isfinite(p)]
    conf = np.maximum(p, 1 - p)
    right = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    table: list[tuple[float, float, int, float, float]] = []
    ece = 0.0
    for b in range(bins):
        sel = which == b
        c = int(np.count_nonzero(sel))
        cf = float(conf[sel].mean()) if c else math.nan
        ac = float(right[sel].mean()) if c else math.nan
        if c:
            ece += c / p.size * abs(ac - cf)
        table.append((float(edges[b]), float(edges[b + 1]), c, cf, ac))
    return Calibration(table, ece if p.size else math.nan, int(p.size))


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
