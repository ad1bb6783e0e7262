"""Model-source benchmarks (CPU, offline models from the models-offline packages).

    python benchmarks/models.py

1. hf-classifier through the pipeline vs a hand-written transformers loop on the same model
   (MiniLM's real backbone + a random one-logit head) and texts, both length-sorted:
   goal ≥ 90 % of the loop's throughput.
2. Length bucketing: the same pipeline vs a naive loop batching in input order on
   mixed-length texts (the speed-up is reported).
3. embedding-similarity (MiniLM) through the pipeline vs raw ``SentenceTransformer.encode`` +
   cosine: goal ≥ 90 % of its throughput.
4. The SmolLM2 judge: cold GGUF load (dequantise + save) vs the cached load.
5. Peak resident memory growth while scoring 10k texts with hf-classifier.
"""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh
from benchmarks._common import interleaved, report
from rewardhub import models

WORDS = [
    "the",
    "a",
    "reward",
    "model",
    "scores",
    "each",
    "answer",
    "by",
    "how",
    "helpful",
    "honest",
    "and",
    "harmless",
    "it",
    "is",
    "while",
    "policies",
    "learn",
    "from",
    "those",
    "scores",
    "and",
    "sometimes",
    "find",
    "ways",
    "to",
    "game",
    "them",
    "so",
    "we",
    "test",
    "carefully",
]


def texts(n: int, seed: int = 0, lo: int = 3, hi: int = 120) -> list[rh.Sample]:
    rng = random.Random(seed)
    return [
        rh.Sample(
            prompt=" ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
            completion=" ".join(rng.choices(WORDS, k=rng.randint(lo, hi))),
        )
        for _ in range(n)
    ]


def make_rm(tmp: Path) -> Path:
    """MiniLM's BERT backbone with a fresh random one-logit head, saved as a classifier."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()  # "newly initialized classifier": that is the point here
    torch.manual_seed(0)
    src = models.minilm_path()
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1)
    model.save_pretrained(tmp / "rm")
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp / "rm")
    return tmp / "rm"


def hand_loop(path: Path, samples: list[rh.Sample], sort: bool, bs: int = 32) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    joined = [f"{s.prompt}\n\n{s.completion}" for s in samples]

    def run() -> list[float]:
        order = list(range(len(joined)))
        if sort:
            lens = [len(x) for x in tok(joined)["input_ids"]]
            order.sort(key=lambda i: -lens[i])
        out = [0.0] * len(joined)
        with torch.inference_mode():
            for k in range(0, len(order), bs):
                idx = order[k : k + bs]
                enc = tok(
                    [joined[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                )
                for i, v in zip(idx, model(**enc).logits[:, 0].tolist()):
                    out[i] = v
        return out

    return run


def pipeline_run(spec: dict[str, Any], samples: list[rh.Sample]) -> Any:
    pipe = rh.Pipeline(spec)

    def run() -> Any:
        return pipe.vector(samples)

    return run


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rm = make_rm(tmp)
        samples = texts(256, hi=80)
        spec = {
            "cache": {"memory_items": 0},
            "sources": [
                {
                    "type": "hf-classifier",
                    "batch_size": 4096,
                    "config": {"model": str(rm), "batch_size": 32},
                }
            ],
        }
        ours = pipeline_run(spec, samples)
        ours_t, base_t = interleaved(ours, hand_loop(rm, samples, sort=True), repeat=2)
        rows.append(
            (
                "hf-classifier pipeline vs sorted hand loop (256)",
                ours_t,
                base_t,
                "≤ 1.11 (≥ 90 %)",
                ours_t <= base_t / 0.9,
            )
        )
        ours_t, naive_t = interleaved(ours, hand_loop(rm, samples, sort=False), repeat=2)
        rows.append(
            (
                "hf-classifier bucketed vs naive input-order loop",
                ours_t,
                naive_t,
                f"speed-up {naive_t / ours_t:.2f}x",
                True,
            )
        )

        from sentence_transformers import SentenceTransformer

        refs = texts(256, seed=1, lo=5, hi=30)
        sim_samples = [
            rh.Sample(prompt=s.prompt, completion=s.completion, reference=r.completion)
            for s, r in zip(samples, refs)
        ]
        st = SentenceTransformer(str(models.minilm_path()), device="cpu")

        def raw() -> Any:
            a = st.encode(
                [s.completion for s in sim_samples], batch_size=64, normalize_embeddings=True
            )
            b = st.encode(
                [s.reference for s in sim_samples], batch_size=64, normalize_embeddings=True
            )
            return (a * b).sum(axis=1)

        sim = pipeline_run(
            {
                "cache": {"memory_items": 0},
                "sources": [{"type": "embedding-similarity", "batch_size": 4096}],
            },
            sim_samples,
        )
        ours_t, base_t = interleaved(sim, raw, repeat=2)
        rows.append(
            (
                "embedding-similarity (MiniLM) vs raw encode (256)",
                ours_t,
                base_t,
                "≤ 1.11 (≥ 90 %)",
                ours_t <= base_t / 0.9,
            )
        )

        import os

        os.environ["REWARDHUB_CACHE_DIR"] = str(tmp / "cache")
        t0 = time.perf_counter()
        models.load_causal_lm("smollm2")
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        models.load_causal_lm("smollm2")
        warm = time.perf_counter() - t0
        rows.append(
            ("SmolLM2 judge: cached load vs cold GGUF load", warm, cold, "cached < 1 s", warm < 1.0)
        )

        report(rows)
        # a fresh process: ru_maxrss is a high-water mark, and the GGUF conversion above set it
        import subprocess

        subprocess.run([sys.executable, __file__, "--memory", str(rm)], check=True)


def memory(rm: str) -> None:
    """Peak RSS growth over a warm pipeline while it scores 10k texts."""
    spec = {
        "cache": {"memory_items": 0},
        "sources": [{"type": "hf-classifier", "config": {"model": rm}}],
    }
    pipe = rh.Pipeline(spec)
    pipe.vector(texts(64, seed=3, lo=3, hi=24))  # loads the model
    big = texts(10_000, seed=2, lo=3, hi=24)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    pipe.vector(big)
    took = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"10k texts through hf-classifier: {took:.1f} s, peak RSS growth over a warm pipeline {peak:.0f} MiB (warm RSS {before / 1024:.0f} MiB)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        memory(sys.argv[2])
    else:
        main()
