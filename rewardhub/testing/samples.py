"""Sample sets for checks and tests: varied, grouped and edge-case samples."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rewardhub.types import Sample

DEFAULT_SAMPLES: tuple[Sample, ...] = (
    Sample(prompt="Say hi", completion="hi there"),
    Sample(prompt="2+2?", completion="The answer is \\boxed{4}.", reference="4"),
    Sample(prompt=[{"role": "user", "content": "Tell me a joke"}], completion=""),
    Sample(prompt="x", completion="ünïcödé ✓ " * 50, metadata={"group": "g1"}),
)


def make_samples(n: int = 8, *, group_size: int = 2, seed: int = 0) -> list[Sample]:
    """``n`` varied samples (plain and chat prompts, references, unicode), ``group_size``
    completions per prompt (``metadata["group"]``), reproducible under ``seed``."""
    rng = np.random.default_rng(seed)
    words = ["the", "answer", "is", "4", "because", "2+2", "ünïcödé", "✓", "please", "thanks"]
    out = []
    for i in range(n):
        g = i // max(group_size, 1)
        prompt: str | list[dict[str, str]] = (
            [{"role": "user", "content": f"question {g}"}] if g % 2 else f"question {g}?"
        )
        text = " ".join(rng.choice(words, size=int(rng.integers(1, 12))).tolist())
        out.append(Sample(prompt=prompt, completion=text, reference=str(g), metadata={"group": g}))
    return out


def edge_samples(base: Sample) -> list[Sample]:
    """``base`` with the completions and prompts sources most often break on."""
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    return [
        replace(base, completion=""),
        replace(base, completion="   \n\t "),
        replace(base, completion="ünïcödé ✓ 😀 中文 العربية \u200b\x00"),
        replace(base, completion="word " * 20_000),
        replace(base, completion="x" * 100_000),
        replace(base, prompt=chat),
        replace(base, prompt=""),
    ]
