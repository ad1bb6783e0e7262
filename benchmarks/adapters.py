"""Trainer adapter overhead and micro-batching gain.

    python benchmarks/adapters.py

1. TRL: one GRPO-sized batch (64 prompts × 8 completions) through the rewardhub reward
   functions (objectives mode: three functions sharing one pipeline call, as TRL calls
   them) vs hand-written TRL reward functions calling the same rules' ``score`` directly.
   Goal: ratio ≤ 1.2.
2. verl: 64 concurrent single-sample ``compute_score`` calls (asyncio.gather, as verl's
   reward loop) through the micro-batched adapter vs the same calls each scoring its one
   sample with ``pipeline.ascore``, on a source with a real per-batch cost (a tiny
   random-weight transformer, benchmarks/_tiny_rm.py). Goal: ≥ 3× faster.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh
from benchmarks import _tiny_rm as tiny_rm
from benchmarks._common import interleaved, report
from rewardhub.adapters.trl import reward_funcs
from rewardhub.adapters.verl import make_compute_score

NO_CACHE = {"memory_items": 0}  # every training step brings new completions
RULES = {
    "objectives": ["brevity", "format", "no_apology"],
    "sources": [
        {"id": "brevity", "type": "length", "config": {"target": 200, "tolerance": 50}},
        {
            "id": "format",
            "type": "regex",
            "config": {"patterns": [{"pattern": "\\\\boxed\\{[^}]+\\}", "objective": "format"}]},
        },
        {
            "id": "no_apology",
            "type": "regex",
            "config": {
                "patterns": [
                    {"pattern": "(?i)\\bsorry\\b", "objective": "no_apology", "must_match": False}
                ]
            },
        },
    ],
    "normalize": "none",
    "aggregate": {"method": "weighted"},
    "cache": NO_CACHE,
}


def trl_batch(n_prompts: int = 64, group: int = 8) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(0)
    words = [
        "the",
        "answer",
        "is",
        "so",
        "we",
        "get",
        "then",
        "sorry",
        "thus",
        "boxed",
        "result",
        "value",
    ]
    prompts, completions, answers = [], [], []
    for p in range(n_prompts):
        for _ in range(group):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
            prompts.append(f"Question {p}: what is {p} + {p}?")
            completions.append(body + (f" \\boxed{{{2 * p}}}" if rng.random() < 0.5 else ""))
            answers.append(str(2 * p))
    return prompts, completions, answers


def bench_trl() -> tuple[float, float]:
    prompts, completions, answers = trl_batch()
    pipe = rh.Pipeline(RULES, hub=rh.Hub(entry_points=False))
    funcs, _ = reward_funcs(pipe)
    # the baseline: the same rule objects, one hand-written TRL function per objective
    sources = [(b.source, b.objectives) for b in pipe.engine.sources]

    def hand_written(source: Any) -> Any:
        def reward(prompts: list[str], completions: list[str], **kw: Any) -> list[float]:
            samples = [
                rh.Sample(prompt=p, completion=c, reference=a)
                for p, c, a in zip(prompts, completions, kw["answer"])
            ]
            return [row[0] for row in source.score(samples)]

        return reward

    base_funcs = [hand_written(s) for s, _ in sources]
    logs: list[Any] = []

    def trl_step(fs: list[Any]) -> None:
        # TRL's _calculate_rewards: fresh lists each step, every function called in turn
        ps, cs = list(prompts), list(completions)
        kwargs = {
            "answer": answers,
            "trainer_state": None,
            "log_extra": lambda *a: logs.append(a),
            "log_metric": lambda *a: logs.append(a),
        }
        for f in fs:
            out = f(prompts=ps, completions=cs, completion_ids=None, **kwargs)
            assert len(out) == len(ps)
        logs.clear()

    ours, base = interleaved(lambda: trl_step(funcs), lambda: trl_step(base_funcs), repeat=15)
    pipe.close()
    return ours, base


def bench_verl(n: int = 64) -> tuple[float, float]:
    pipe = rh.Pipeline(tiny_rm.SPEC, hub=rh.Hub(entry_points=False))
    compute_score = make_compute_score(pipe, window_ms=5, max_batch=64)
    counter = itertools.count()

    def calls() -> list[dict[str, Any]]:
        k = next(counter)
        return [
            {
                "data_source": "bench",
                "solution_str": f"response {k}-{i} " + "x" * (i % 40),
                "ground_truth": None,
                "extra_info": {"index": i},
            }
            for i in range(n)
        ]

    def batched() -> None:
        async def run() -> None:
            await asyncio.gather(*(compute_score(**c) for c in calls()))

        asyncio.run(run())

    def per_sample() -> None:
        async def one(c: dict[str, Any]) -> float:
            s = rh.Sample(prompt="", completion=c["solution_str"], metadata=c["extra_info"])
            return float((await pipe.ascore([s])).total[0])

        async def run() -> None:
            await asyncio.gather(*(one(c) for c in calls()))

        asyncio.run(run())

    ours, base = interleaved(batched, per_sample, repeat=7)
    compute_score.batcher.close()  # type: ignore[attr-defined]
    pipe.close()
    return ours, base


def main() -> None:
    trl_ours, trl_base = bench_trl()
    verl_ours, verl_base = bench_verl()
    report(
        [
            (
                "TRL 512 completions, 3 objectives vs hand-written",
                trl_ours,
                trl_base,
                "≤ 1.2",
                trl_ours / trl_base <= 1.2,
            ),
            (
                "verl 64 concurrent calls, micro-batched vs per call",
                verl_ours,
                verl_base,
                "≥ 3× gain",
                verl_base / verl_ours >= 3,
            ),
        ]
    )
    print(f"micro-batching gain: {verl_base / verl_ours:.1f}×")


if __name__ == "__main__":
    main()
