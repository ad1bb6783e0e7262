"""Sampling from a transformers causal LM: the base-policy generator used by best-of-n, and
blockwise controlled decoding (Mudgal et al., 2024) with multi-objective selection rules,
RMOD's robust rule among them ("Robust Multi-Objective Decoding of Large Language Models", 2025).

torch and transformers are imported only here, when a model is used.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from rewardhub._optional import require
from rewardhub.aggregate.robust import robust_weights
from rewardhub.errors import InputError
from rewardhub.steering.result import SteerResult, checked_prompts
from rewardhub.types import FloatArray, Sample, json_row

Rule = Literal["weighted", "maxmin", "robust", "total"]
RULES: tuple[str, ...] = ("weighted", "maxmin", "robust", "total")


def _torch() -> Any:
    return require("torch", "models", "steering with a model")


def format_prompt(tokenizer: Any, prompt: str) -> str:
    """The prompt as the model expects it: its chat template (as one user turn) when it has
    one, the plain text otherwise."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return str(text)
    return prompt


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


@functools.cache
def _cache_arg() -> str:
    """transformers 5 names the KV cache ``cache`` (in generate and its output); 4.x names it
    ``past_key_values``."""
    from transformers.generation.utils import GenerateDecoderOnlyOutput

    return (
        "cache" if "cache" in GenerateDecoderOnlyOutput.__dataclass_fields__ else "past_key_values"
    )


class _LM:
    """A causal LM and its tokenizer with the few operations steering needs."""

    def __init__(self, model: Any, tokenizer: Any, temperature: float, top_p: float) -> None:
        if not temperature > 0:
            raise InputError(f"temperature must be positive, got {temperature}")
        if not 0 < top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {top_p}")
        self.torch = _torch()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.eos = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad = int(pad) if pad is not None else (min(self.eos) if self.eos else 0)
        self.temperature = temperature
        self.top_p = top_p

    def encode(self, prompt: str) -> list[int]:
        ids = self.tokenizer(format_prompt(self.tokenizer, prompt), add_special_tokens=False)
        return list(ids["input_ids"])

    def sample(
        self, prefix: Sequence[int], k: int, max_new: int, cache: Any = None
    ) -> tuple[list[tuple[list[int], bool]], Any]:
        """``k`` continuations of at most ``max_new`` tokens: (tokens, ended with EOS), and the
        K-row KV cache generation left (``cache``, a batch-1 cache of ``prefix[:-1]``, spares
        re-encoding the prefix: it is copied to the K rows)."""
        torch = self.torch
        inp = torch.tensor([list(prefix)], dtype=torch.long).expand(k, -1)
        kw: dict[str, Any] = {}
        if cache is not None:
            rows_cache = copy.deepcopy(cache)
            rows_cache.batch_repeat_interleave(k)
            kw[_cache_arg()] = rows_cache
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=inp,
                attention_mask=torch.ones_like(inp),
                do_sample=True,
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=0,
                max_new_tokens=max_new,
                pad_token_id=self.pad,
                eos_token_id=sorted(self.eos) or None,
                return_dict_in_generate=True,
                **kw,
            )
        seqs = getattr(out, "sequences", out)  # a model may hand back the bare tensor
        rows = []
        for row in seqs[:, inp.shape[1] :].tolist():
            for j, tok in enumerate(row):
                if tok in self.eos:
                    rows.append((row[:j], True))
                    break
            else:
                rows.append((row, False))
        return rows, getattr(out, _cache_arg(), None)

    def keep_row(self, cache: Any, j: int, length: int) -> Any:
        """Row ``j`` of a K-row cache, if it covers exactly ``length`` tokens (the kept text
        minus its last token, which the next block feeds); else None (re-encode instead)."""
        if cache is None or not hasattr(cache, "batch_select_indices"):
            return None
        try:
            cache.batch_select_indices(self.torch.tensor([j]))
            return cache if cache.get_seq_length() == length else None
        except (AttributeError, RuntimeError, TypeError, ValueError):
            return None

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))


class LMGenerator:
    """A ``(prompts, n) -> completions`` sampler over a transformers causal LM."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.lm = _LM(model, tokenizer, temperature, top_p)
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def __call__(self, prompts: Sequence[str], n: int) -> list[list[str]]:
        if self.seed is not None:
            self.lm.torch.manual_seed(self.seed)
        out = []
        for p in prompts:
            rows, _ = self.lm.sample(self.lm.encode(p), n, self.max_new_tokens)
            out.append([self.lm.decode(t) for t, _ in rows])
        return out


def _rule_scores(
    rule: str, v: FloatArray, w: FloatArray | None, lam: float, total: FloatArray
) -> tuple[FloatArray, FloatArray | None]:
    """Per-candidate selection scores (NaN rows excluded) and the weights used."""
    ok = np.isfinite(v).all(axis=1)
    scores = np.full(v.shape[0], -np.inf)
    used: FloatArray | None = None
    if rule == "total":
        scores = np.where(np.isfinite(total), total, -np.inf)
    elif ok.any():
        if rule == "maxmin":
            scores[ok] = v[ok].min(axis=1)
        else:
            used = robust_weights(v[ok], lam) if rule == "robust" else w
            assert used is not None
            scores[ok] = v[ok] @ used
    return scores, used


def controlled_decode(
    prompts: Sequence[str],
    model: Any,
    tokenizer: Any,
    pipeline: Any,
    *,
    rule: Rule = "weighted",
    k: int = 8,
    block: int = 8,
    max_new_tokens: int = 128,
    weights: Mapping[str, float] | Sequence[Mapping[str, float] | None] | None = None,
    lam: float = 1.0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    on_block: Callable[[], None] | None = None,
    reuse: bool = True,
) -> list[SteerResult]:
    """Blockwise controlled decoding: per block, sample ``k`` continuations of ``block``
    tokens, score each partial text with the pipeline, keep one, repeat until EOS or
    ``max_new_tokens``.

    The rule picks the candidate from the pipeline's normalised reward vectors ``v`` (K × m):

    - ``weighted``: argmax w·v, w from ``weights`` (per call or per prompt; default uniform);
      multi-objective decoding with fixed weights;
    - ``maxmin``: argmax min_j v_j;
    - ``robust``: RMOD — w* = :func:`rewardhub.aggregate.robust_weights` of the K vectors
      (λ = ``lam``), then argmax w*·v;
    - ``total``: argmax of the pipeline's own aggregate.

    Candidates the pipeline could not score are never kept while another can be; if none can,
    the first (a plain sample) is kept and the block is counted in ``info["abstained_blocks"]``.

    With ``reuse`` (default) the KV cache of the kept candidate carries over to the next block
    and is copied to its K candidates, so the prefix is encoded once, not once per block;
    models whose cache cannot be split fall back to re-encoding.
    """
    if rule not in RULES:
        raise InputError(f"unknown rule {rule!r}; choose one of {list(RULES)}")
    for name, value in (("k", k), ("block", block), ("max_new_tokens", max_new_tokens)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    prompts, per_prompt = checked_prompts(prompts, weights)
    lm = _LM(model, tokenizer, temperature, top_p)
    if seed is not None:
        lm.torch.manual_seed(seed)
    objectives = tuple(pipeline.objectives)
    out = []
    for i, prompt in enumerate(prompts):
        w = _weight_vector(per_prompt[i], objectives)
        prefix = lm.encode(prompt)
        tokens: list[int] = []
        chosen_weights: list[list[float]] = []
        abstained_blocks = blocks = 0
        rewards: dict[str, float | None] = dict.fromkeys(objectives)
        total = math.nan
        score_s = 0.0
        cache: Any = None
        while len(tokens) < max_new_tokens:
            cands, kv = lm.sample(
                prefix + tokens,
                k,
                min(block, max_new_tokens - len(tokens)),
                cache if reuse else None,
            )
            texts = [lm.decode(tokens + c) for c, _ in cands]
            t0 = time.perf_counter()
            res = pipeline.score(
                [Sample(prompt=prompt, completion=t, metadata={"group": 0}) for t in texts],
                weights=per_prompt[i] if rule == "total" else None,
            )
            v = np.asarray(res.diagnostics.get("normalized", res.vector.values), dtype=np.float64)
            scores, used = _rule_scores(rule, v, w, lam, np.asarray(res.total, dtype=np.float64))
            score_s += time.perf_counter() - t0
            blocks += 1
            if np.isfinite(scores).any():
                j = int(np.argmax(scores))
            else:
                j, abstained_blocks = 0, abstained_blocks + 1
            if used is not None and rule == "robust":
                chosen_weights.append([float(x) for x in used])
            tokens += cands[j][0]
            cache = lm.keep_row(kv, j, len(prefix) + len(tokens) - 1)
            rewards = json_row(objectives, res.vector.values[j])
            total = float(res.total[j])
            if on_block is not None:
                on_block()
            if cands[j][1] or not cands[j][0]:
                break
        info: dict[str, Any] = {
            "rule": rule,
            "k": k,
            "block": block,
            "blocks": blocks,
            "tokens": len(tokens),
            "abstained_blocks": abstained_blocks,
            "scoring_s": score_s,
        }
        if chosen_weights:
            info["robust_weights"] = chosen_weights
        out.append(
            SteerResult(
                prompt,
                lm.decode(tokens),
                rewards,
                total,
                f"cd-{rule}",
                [],
                abstained_blocks == blocks,
                info,
            )
        )
    return out


def _weight_vector(weights: Mapping[str, float] | None, objectives: tuple[str, ...]) -> FloatArray:
    """Weights over ``objectives`` (unnamed ones 0; default uniform), normalised to sum 1."""
    if weights is None:
        return np.full(len(objectives), 1.0 / len(objectives))
    unknown = sorted(set(weights) - set(objectives))
    if unknown:
        raise InputError(
            f"weights name unknown objective(s) {unknown}; the objectives are {list(objectives)}"
        )
    w = np.array([float(weights.get(o, 0.0)) for o in objectives])
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(
            f"weights must be finite, non-negative and not all zero, got {dict(weights)}"
        )
    out: FloatArray = w / w.sum()
    return out
