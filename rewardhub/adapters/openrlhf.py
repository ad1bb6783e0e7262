"""OpenRLHF (0.11): the ``reward_func`` that ``--reward.remote_url path/to/file.py`` loads.

OpenRLHF calls ``reward_func(queries, prompts, labels)`` in a thread, one sample per call and
many calls at once; each query is the prompt plus the response, decoded with the special
tokens. It reads ``{"rewards": tensor, "scores": tensor, "extra_logs": {name: tensor}}`` and
cannot take NaN, so abstentions follow :class:`AbstainFill` (flags in ``extra_logs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rewardhub._optional import require
from rewardhub.adapters._common import AbstainFill, Fill, SpecLike, load_pipeline
from rewardhub.batching import MicroBatcher, Row
from rewardhub.hub import Hub
from rewardhub.types import Sample

#: end-of-turn / end-of-text markers removed from the end of a decoded response
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<eos>")

RewardFunc = Callable[..., dict[str, Any]]


def split_query(query: str, prompt: str, end_tokens: Sequence[str] = END_TOKENS) -> str | None:
    """The response in ``query`` (prompt + response): the text after the prompt, end tokens
    stripped. None when the prompt is not in the query (e.g. OpenRLHF truncated it)."""
    at = query.find(prompt) if prompt else 0
    if at < 0:
        return None
    start = at + len(prompt)
    # one backwards pass over an end index (linear time): re-slicing the string once per
    # token, as a plain loop would, is quadratic on a response of many repeated end tokens
    end = len(query)
    tokens = [t for t in end_tokens if t]
    while True:
        cut = end
        while cut > start and query[cut - 1].isspace():  # rstrip without copying the string
            cut -= 1
        for tok in tokens:
            if query.endswith(tok, start, cut):
                end = cut - len(tok)
                break
        else:
            return query[start:end]


def make_reward_func(
    spec: SpecLike = None,
    *,
    hub: Hub | None = None,
    fill: Fill = "fail",
    fill_total: float | None = None,
    end_tokens: Sequence[str] = END_TOKENS,
    window_ms: float = 5.0,
    max_batch: int = 64,
) -> RewardFunc:
    """Build OpenRLHF's ``reward_func`` over a pipeline (a Pipeline, a spec dict or file, or
    None for ``$REWARDHUB_SPEC``). Concurrent calls share pipeline batches. ``rewards`` and
    ``scores`` are the total; ``extra_logs`` has every objective and the abstain flags."""
    torch = require("torch", "openrlhf", "the OpenRLHF adapter")
    pipeline = load_pipeline(spec, hub)
    filler = AbstainFill(pipeline, fill, total=fill_total)
    batcher = MicroBatcher(pipeline, window_ms=window_ms, max_batch=max_batch)
    keys = filler.keys()

    def reward_func(
        queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs: Any
    ) -> dict[str, Any]:
        samples = to_samples(queries, prompts, labels, end_tokens)
        scored = iter(batcher.submit_many_sync([s for s, r in samples if r is not None]))
        rows = [
            filler.numbers(next(scored) if r is not None else no_response(filler), s)
            for s, r in samples
        ]
        # float32 tensors: a finite float64 beyond float32's range is clipped to it, never inf
        big = float(torch.finfo(torch.float32).max)
        columns = {
            k: torch.tensor([min(max(r[k], -big), big) for r in rows], dtype=torch.float32)
            for k in keys
        }
        total = columns.pop("score")
        return {"rewards": total, "scores": total.clone(), "extra_logs": columns}

    reward_func.batcher = batcher  # type: ignore[attr-defined]
    return reward_func


def to_samples(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Sequence[Any],
    end_tokens: Sequence[str] = END_TOKENS,
) -> list[tuple[Sample, str | None]]:
    """One ``(sample, response)`` per query; the response is None (and the sample's
    completion empty) when the prompt is not in the query. Shared with the HTTP route."""
    if not len(queries) == len(prompts) == len(labels):
        raise ValueError(
            f"reward_func got {len(queries)} queries, {len(prompts)} prompts and "
            f"{len(labels)} labels; they must match one to one"
        )
    out = []
    for query, prompt, label in zip(queries, prompts, labels):
        response = split_query(query, prompt, end_tokens)
        out.append((Sample(prompt=prompt, completion=response or "", reference=label), response))
    return out


def no_response(filler: AbstainFill) -> Row:
    """The row of a query whose response cannot be found: nothing could be scored."""
    objs = filler.pipeline.objectives
    return Row(
        values=dict.fromkeys(objs, math.nan),
        total=math.nan,
        reasons={"openrlhf": "the prompt is not in the query; cannot find the response"},
        sources=dict.fromkeys(objs, "openrlhf"),
        unscorable="openrlhf: the prompt is not in the query; cannot find the response",
    )
