"""Best-of-n and soft best-of-n over a reward pipeline, with the KL cost of the selection.

- Best-of-n draws ``n`` candidates from the base policy and keeps the one with the highest total.
- Soft best-of-n (Verdun et al., 2025, "Soft Best-of-n Sampling for Model Alignment") keeps
  candidate ``i`` with probability ∝ exp(total_i / β): β → 0 is best-of-n, β → ∞ is the base
  policy.
- :func:`bon_kl_bound` is the widely quoted ``log n − (n − 1)/n``, which Beirami et al. (2024,
  "Theoretical Guarantees on the Best-of-n Alignment Policy", Thm. 3.1) prove is an *upper bound*
  on KL(best-of-n ‖ base), exact only for continuous rewards without ties.
- :func:`bon_kl_estimate` evaluates the exact KL of the best-of-n policy under the reward
  distribution seen in the candidates: with the policy's PMF from Beirami et al. (Lemma 1),
  an outcome of reward level ``j`` (probability ``p_j``, CDF ``F_j``) has best-of-n probability
  ``F_j^n − F_{j−1}^n``, so ``KL = Σ_j (F_j^n − F_{j−1}^n) log((F_j^n − F_{j−1}^n) / p_j)``. Ties
  (verifiers, rules) make it much smaller than the bound; with many distinct rewards it tends
  to the bound.
- :func:`bon_curve` is the unbiased order-statistics estimator of E[max of n rewards] for every
  n ≤ N from N samples of one prompt (as used for best-of-n scaling plots, e.g. Gao et al.,
  2023): with the rewards sorted ascending, ``E_n = Σ_{i=n}^{N} C(i−1, n−1)/C(N, n) · r_(i)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from rewardhub.errors import InputError
from rewardhub.steering.result import Candidate, SteerResult, checked_prompts
from rewardhub.types import FloatArray, Sample, json_row

#: ``(prompts, n) -> n completions per prompt``: any sampler from the base policy
Generator = Callable[[Sequence[str], int], Sequence[Sequence[str]]]


def bon_kl_bound(n: int) -> float:
    """``log n − (n − 1)/n``: an upper bound on KL(best-of-n ‖ base) (Beirami et al., 2024)."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def bon_kl_estimate(rewards: npt.ArrayLike, n: int) -> float:
    """KL(best-of-n ‖ base) when the base policy's rewards are distributed as ``rewards``.

    ``rewards`` are samples of the base policy's reward for one prompt (e.g. the candidates);
    NaN samples are ignored. Always ≤ :func:`bon_kl_bound`; equal to 0 when all rewards tie.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    r = np.asarray(rewards, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan
    _, counts = np.unique(r, return_counts=True)
    p = counts / r.size
    cdf = np.minimum(np.cumsum(p), 1.0)
    prev = np.concatenate(([0.0], cdf[:-1]))
    q = cdf**n - prev**n  # best-of-n mass of each reward level
    keep = q > 0
    return float(max(0.0, np.sum(q[keep] * np.log(q[keep] / p[keep]))))


def bon_curve(rewards: npt.ArrayLike, ns: Sequence[int] | None = None) -> FloatArray:
    """Unbiased estimates of E[max of n rewards] for each n in ``ns`` (default 1..N).

    ``rewards`` are N independent samples of one prompt's reward under the base policy.
    """
    r = np.sort(np.asarray(rewards, dtype=np.float64).ravel())
    if r.size == 0 or not np.isfinite(r).all():
        raise InputError("bon_curve needs at least one reward and no NaN/inf (drop abstentions)")
    big_n = r.size
    grid = list(range(1, big_n + 1)) if ns is None else [int(x) for x in ns]
    bad = [x for x in grid if not 1 <= x <= big_n]
    if bad:
        raise InputError(f"every n must be in 1..{big_n} (the number of rewards), got {bad}")
    return np.array([float(bon_weights(big_n, n) @ r) for n in grid])


def bon_weights(big_n: int, n: int) -> FloatArray:
    """The probability that the ``i``-th smallest of ``big_n`` rewards is the maximum of a
    random ``n``-subset: ``C(i−1, n−1) / C(N, n)`` (zero where ``i < n``), for i = 1..N."""
    i = np.arange(1, big_n + 1, dtype=np.float64)
    # in logs, zero where i < n
    with np.errstate(invalid="ignore"):
        logw = (
            gammaln(i)
            - gammaln(n)
            - gammaln(np.maximum(i - n + 1, 1))
            - (gammaln(big_n + 1) - gammaln(n + 1) - gammaln(big_n - n + 1))
        )
    w = np.where(i >= n, np.exp(logw), 0.0)
    out: FloatArray = w / w.sum()  # w sums to 1 exactly; dividing removes rounding
    return out


def _pick(totals: FloatArray, beta: float | None, rng: np.random.Generator) -> int | None:
    """Index of the chosen candidate (None when no total is finite)."""
    ok = np.isfinite(totals)
    if not ok.any():
        return None
    if beta is None:
        return int(np.flatnonzero(ok)[np.argmax(totals[ok])])
    z = np.where(ok, totals / beta, -np.inf)
    p = np.exp(z - z[ok].max())
    return int(rng.choice(len(totals), p=p / p.sum()))


def _select(
    prompts: Sequence[str],
    generator: Generator,
    pipeline: Any,
    n: int,
    *,
    beta: float | None,
    weights: Mapping[str, float] | Sequence[Mapping[str, float] | None] | None,
    seed: int | None,
    metadata: Mapping[str, Any] | None,
) -> list[SteerResult]:
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    if beta is not None and not (beta > 0 and math.isfinite(beta)):
        raise InputError(f"beta must be a positive number, got {beta}")
    prompts, per_prompt = checked_prompts(prompts, weights)
    completions = [list(c) for c in generator(prompts, n)]
    if len(completions) != len(prompts) or any(len(c) != n for c in completions):
        raise InputError(
            f"the generator returned {[len(c) for c in completions]} completions for "
            f"{len(prompts)} prompts; expected {n} each"
        )
    rng = np.random.default_rng(seed)
    method = "best-of-n" if beta is None else "soft-best-of-n"
    out = []
    for i, (prompt, texts) in enumerate(zip(prompts, completions)):
        samples = [
            Sample(prompt=prompt, completion=t, metadata={**(metadata or {}), "group": i})
            for t in texts
        ]
        res = pipeline.score(samples, weights=per_prompt[i])
        totals = np.asarray(res.total, dtype=np.float64)
        cands = [
            Candidate(t, json_row(res.vector.objectives, res.vector.values[j]), float(totals[j]))
            for j, t in enumerate(texts)
        ]
        chosen = _pick(totals, beta, rng)
        info = {
            "n": n,
            "kl_bound": bon_kl_bound(n),
            "kl_estimate": bon_kl_estimate(totals, n),
        }
        if beta is not None:
            info["beta"] = beta
        pick = cands[0 if chosen is None else chosen]
        out.append(
            SteerResult(
                prompt, pick.text, pick.rewards, pick.total, method, cands, chosen is None, info
            )
        )
    return out


def best_of_n(
    prompts: Sequence[str],
    generator: Generator | tuple[Any, Any],
    pipeline: Any,
    n: int = 8,
    *,
    weights: Mapping[str, float] | Sequence[Mapping[str, float] | None] | None = None,
    seed: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[SteerResult]:
    """For each prompt, draw ``n`` candidates and keep the one with the highest total.

    ``generator`` is a callable ``(prompts, n) -> completions`` or a transformers
    ``(model, tokenizer)`` pair. The candidates of one prompt form one group
    (``metadata.group``), so group normalisers and aggregators compare them with each other.
    ``weights`` (one mapping, or one per prompt) overrides the spec's weights per request.
    When every candidate is unscorable (total NaN), the first one — a plain sample from the
    base policy — is returned with ``abstained=True``.
    """
    return _select(
        prompts,
        as_generator(generator, seed),
        pipeline,
        n,
        beta=None,
        weights=weights,
        seed=seed,
        metadata=metadata,
    )


def soft_best_of_n(
    prompts: Sequence[str],
    generator: Generator | tuple[Any, Any],
    pipeline: Any,
    n: int = 8,
    *,
    beta: float = 1.0,
    weights: Mapping[str, float] | Sequence[Mapping[str, float] | None] | None = None,
    seed: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[SteerResult]:
    """Like :func:`best_of_n`, but sample the kept candidate with probability ∝ exp(total/β)."""
    return _select(
        prompts,
        as_generator(generator, seed),
        pipeline,
        n,
        beta=beta,
        weights=weights,
        seed=seed,
        metadata=metadata,
    )


def as_generator(generator: Generator | tuple[Any, Any], seed: int | None = None) -> Generator:
    """A ``(model, tokenizer)`` pair becomes a sampling generator; a callable is kept."""
    if isinstance(generator, tuple):
        from rewardhub.steering.lm import LMGenerator

        model, tokenizer = generator
        return LMGenerator(model, tokenizer, seed=seed)
    if not callable(generator):
        raise InputError(
            "generator must be a callable (prompts, n) -> completions or a (model, tokenizer) pair"
        )
    return generator
