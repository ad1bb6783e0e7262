"""A tiny reward model with random weights, standing in for a real one in benchmarks.

A 1-layer BERT-style sequence classifier (hidden 64, 64 tokens) over byte ids: the per-sample cost is a
real transformer forward pass on CPU, small enough for 10k samples in a few seconds.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import rewardhub as rh

MAX_LEN = 64


_LOCK = threading.Lock()


def _model() -> Any:
    # the engine scores sub-batches in threads: without the lock two threads would build
    # the model at once, drawing from one seeded RNG in turns (weights differing from run
    # to run), and race transformers' lazy import (an ImportError for one of them)
    with _LOCK:
        return _build()


@lru_cache(maxsize=1)
def _build() -> Any:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=260,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=MAX_LEN,
        num_labels=1,
    )
    return BertForSequenceClassification(config).eval()


def score_batch(samples: list[rh.Sample]) -> list[list[float]]:
    """One reward per sample from the tiny model (inputs: UTF-8 bytes, truncated)."""
    import torch

    ids = [list(s.completion.encode("utf-8")[: MAX_LEN - 2]) for s in samples]
    width = max((len(x) for x in ids), default=0) + 2
    batch = torch.zeros((len(ids), width), dtype=torch.long)
    mask = torch.zeros_like(batch)
    for i, x in enumerate(ids):
        row = [256, *(b for b in x), 257]
        batch[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    with torch.inference_mode():
        logits = _model()(input_ids=batch, attention_mask=mask).logits
    return logits.tolist()  # type: ignore[no-any-return]


#: a pipeline spec scoring with the tiny model, uncached (each call brings new completions)
SPEC: dict[str, Any] = {
    "sources": [
        {
            "id": "rm",
            "type": "python",
            "config": {
                "function": "benchmarks._tiny_rm:score_batch",
                "batched": True,
                "objectives": ["rm"],
            },
        }
    ],
    "normalize": "none",
    "cache": {"memory_items": 0},
}
