"""Over-optimisation curves: the gold reward of best-of-n against its KL cost when the
candidates are selected by a proxy (Gao et al., 2023, "Scaling Laws for Reward Model
Overoptimization"), and by conservative ensemble proxies (Coste et al., 2023: the mean, the
worst case WCO and the uncertainty-weighted UWO of the members).

Given N candidates per prompt with proxy and gold rewards, the expected gold reward of the
proxy's best of a random ``n``-subset is exact, without resampling: with the candidates sorted
by proxy, the ``i``-th is selected with probability ``C(i−1, n−1)/C(N, n)``
(:func:`rewardhub.steering.bon.bon_weights`); candidates tied on the proxy share their mean gold
(ties are broken at random). The KL of best-of-n against the base policy is
:func:`~rewardhub.steering.bon_kl_bound` (``log n − (n−1)/n``) and, tie-aware,
:func:`~rewardhub.steering.bon_kl_estimate` over the proxy's rewards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rewardhub.aggregate.uncertainty import UWO_LAMBDA_BEST_OF_N, ensemble_stats, uwo, wco
from rewardhub.errors import InputError
from rewardhub.steering.bon import bon_kl_bound, bon_kl_estimate, bon_weights
from rewardhub.types import FloatArray


@dataclass(frozen=True)
class Curve:
    """One proxy's best-of-n curve: per ``n``, the KL (bound and estimate), the expected gold
    reward and the expected proxy reward of the selected candidate (means over prompts)."""

    proxy: str
    n: list[int]
    kl_bound: list[float]
    kl_estimate: list[float]
    gold: list[float]
    proxy_reward: list[float]

    def to_dict(self) -> dict[str, object]:
        return {
            "proxy": self.proxy,
            "n": self.n,
            "kl_bound": self.kl_bound,
            "kl_estimate": self.kl_estimate,
            "gold": self.gold,
            "proxy_reward": self.proxy_reward,
        }


def selected_gold(proxy: npt.ArrayLike, gold: npt.ArrayLike, n: int) -> float:
    """E[gold of the proxy's best of a random ``n``-subset] of one prompt's candidates
    (candidates where either reward is NaN are left out; NaN when fewer than ``n`` remain)."""
    p = np.asarray(proxy, dtype=np.float64).ravel()
    g = np.asarray(gold, dtype=np.float64).ravel()
    if p.shape != g.shape:
        raise InputError(f"proxy has {p.size} candidates but gold has {g.size}")
    ok = np.isfinite(p) & np.isfinite(g)
    p, g = p[ok], g[ok]
    if p.size < n:
        return math.nan
    order = np.argsort(p, kind="stable")
    p, g = p[order], g[order]
    _, first, counts = np.unique(p, return_index=True, return_counts=True)
    tied = np.repeat(np.add.reduceat(g, first) / counts, counts)  # mean gold per tie group
    return float(bon_weights(p.size, n) @ tied)


def bon_gold_curve(
    proxy: npt.ArrayLike, gold: npt.ArrayLike, ns: Sequence[int], name: str = "proxy"
) -> Curve:
    """The curve of one proxy over prompts × candidates arrays ``proxy`` and ``gold``."""
    p = _grid(proxy, "proxy")
    g = _grid(gold, "gold")
    if p.shape != g.shape:
        raise InputError(f"proxy has shape {p.shape} but gold has shape {g.shape}")
    grid = [int(n) for n in ns]
    if not grid or min(grid) < 1 or max(grid) > p.shape[1]:
        raise InputError(f"every n must be in 1..{p.shape[1]} (the candidates per prompt)")
    gold_n, proxy_n, kl_est = [], [], []
    for n in grid:
        gold_n.append(_mean([selected_gold(p[i], g[i], n) for i in range(p.shape[0])]))
        proxy_n.append(_mean([selected_gold(p[i], p[i], n) for i in range(p.shape[0])]))
        kl_est.append(_mean([bon_kl_estimate(p[i], n) for i in range(p.shape[0])]))
    return Curve(name, grid, [bon_kl_bound(n) for n in grid], kl_est, gold_n, proxy_n)


def ensemble_proxies(
    members: npt.ArrayLike, lam: float = UWO_LAMBDA_BEST_OF_N
) -> dict[str, FloatArray]:
    """The conservative proxies of an ensemble (members × prompts × candidates): ``mean``,
    ``wco`` (the minimum over members) and ``uwo`` (mean − λ·variance)."""
    m = np.asarray(members, dtype=np.float64)
    if m.ndim != 3:
        raise InputError(f"members must be members × prompts × candidates, got shape {m.shape}")
    mean, var = ensemble_stats(m)
    return {"mean": mean, "wco": wco(m), "uwo": uwo(mean, var, lam)}


def overoptimization(
    proxies: Mapping[str, npt.ArrayLike], gold: npt.ArrayLike, ns: Sequence[int]
) -> list[Curve]:
    """One :class:`Curve` per named proxy (each prompts × candidates, like ``gold``)."""
    return [bon_gold_curve(p, gold, ns, name) for name, p in proxies.items()]


def _grid(x: npt.ArrayLike, what: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or 0 in a.shape:
        raise InputError(f"{what} must be prompts × candidates, got shape {a.shape}")
    return a


def _mean(xs: list[float]) -> float:
    a = np.array(xs, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan
