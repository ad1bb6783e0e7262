"""Engine overhead, cache speed-up and import time.

    python benchmarks/engine.py

1. 10k samples through a pipeline of three rule sources (length, regex, python) vs a bare
   loop calling the same sources' ``score`` directly: goal ratio ≤ 1.5.
2. The same 10k samples again (new Sample objects, results from the cache) vs recomputing
   them with a fresh pipeline: goal ≥ 50× faster. Measured on the pipeline a cache is for —
   the three rules plus a reward model (a tiny random-weight transformer, benchmarks/_tiny_rm.py)
   — and, for the record, on the three cheap rules alone (where a lookup costs about as much
   as the rule itself).
3. ``import rewardhub`` in a fresh interpreter (median of 7): goal < 0.3 s; the baseline is
   ``import numpy, pydantic``, the floor every import pays.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh
from benchmarks._common import best_of, interleaved, report

N = 10_000
SPEC = {
    "sources": [
        {"type": "length", "config": {"target": 200, "unit": "words", "tolerance": 20}},
        {
            "type": "regex",
            "config": {
                "patterns": [
                    {"pattern": r"\\boxed\{[^}]*\}", "objective": "format"},
                    {
                        "pattern": r"(?i)as an ai (language )?model",
                        "objective": "format",
                        "must_match": False,
                    },
                    {"pattern": r"\b(\w+) \1\b", "objective": "no_stutter", "must_match": False},
                ]
            },
        },
        {"type": "python", "config": {"function": "benchmarks.engine:politeness"}},
    ],
    "normalize": "zscore",
    "aggregate": {"method": "weighted"},
}
WORDS = [
    "the",
    "of",
    "answer",
    "model",
    "please",
    "thank",
    "reward",
    "policy",
    "gradient",
    "value",
    "we",
    "so",
    "it",
    "is",
    "boxed",
]


def politeness(sample: rh.Sample) -> float:
    text = sample.completion.lower()
    return sum(w in text for w in ("please", "thank", "sorry")) / 3


def make_samples(seed: int = 0) -> list[rh.Sample]:
    rng = random.Random(seed)
    out = []
    for i in range(N):
        words = rng.choices(WORDS, k=rng.randint(20, 300))
        if i % 3 == 0:
            words.append("\\boxed{42}")
        out.append(rh.Sample(prompt=f"question {i % 2000}", completion=" ".join(words)))
    return out


def main() -> None:
    hub = rh.Hub(entry_points=False)
    samples = make_samples()
    probe = rh.Pipeline(SPEC, hub=hub)
    sources = [b.source for b in probe.engine.sources]

    def bare() -> None:
        for src in sources:
            src.score(samples)

    def through_pipeline() -> None:
        with rh.Pipeline(SPEC, hub=hub) as pipe:
            pipe.score(samples)

    # a fresh pipeline per run (cold cache); building it is set-up, not scoring
    cold = iter([rh.Pipeline(SPEC, hub=hub) for _ in range(8)])
    t_pipe, t_bare = interleaved(lambda: next(cold).score(samples), bare, repeat=7)

    warm = rh.Pipeline(SPEC, hub=hub)
    warm.score(samples)

    # fresh Sample objects each run (as a trainer sends): keys are recomputed, results reused
    # a cached call takes tens of ms, so this VM's jitter is large against it: best of 10
    fresh = iter([[rh.Sample(s.prompt, s.completion) for s in samples] for _ in range(11)])

    def cached() -> None:
        warm.score(next(fresh))

    t_cached = best_of(cached, repeat=10)
    assert warm.engine.stats.computed == N * 3, "the cached runs recomputed something"
    t_recompute = best_of(through_pipeline, repeat=5)

    rm_spec = {
        **SPEC,
        "sources": [
            *SPEC["sources"],
            {
                "type": "python",
                "id": "rm",
                "config": {
                    "function": "benchmarks._tiny_rm:score_batch",
                    "batched": True,
                    "objectives": ["rm"],
                },
            },
        ],
    }
    rm_pipe = rh.Pipeline(rm_spec, hub=hub)
    t_rm_recompute = best_of(lambda: rh.Pipeline(rm_spec, hub=hub).score(samples), repeat=2)
    rm_pipe.score(samples)
    fresh_rm = iter([[rh.Sample(s.prompt, s.completion) for s in samples] for _ in range(11)])
    t_rm_cached = best_of(lambda: rm_pipe.score(next(fresh_rm)), repeat=10)

    code = "import time; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"

    def import_time(mod: str) -> float:
        runs = []
        for _ in range(7):
            out = subprocess.run(
                [sys.executable, "-c", code.format(m=mod)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(float(out.stdout))
        return sorted(runs)[len(runs) // 2]

    t_import = import_time("rewardhub")
    t_floor = import_time("numpy, pydantic")

    print(f"rewardhub engine benchmark: {N} samples × {len(sources)} rule sources\n")
    report(
        [
            (
                "pipeline vs bare loop (same sources)",
                t_pipe,
                t_bare,
                "≤ 1.5×",
                t_pipe / t_bare <= 1.5,
            ),
            (
                "cached re-run vs recompute (rules + RM)",
                t_rm_cached,
                t_rm_recompute,
                "≥ 50× faster",
                t_rm_recompute / t_rm_cached >= 50,
            ),
            ("cached re-run vs recompute (rules only)", t_cached, t_recompute, "(info)", True),
            (
                "import rewardhub vs import numpy, pydantic",
                t_import,
                t_floor,
                "< 300 ms",
                t_import < 0.3,
            ),
        ]
    )
    print(
        f"\ncache speed-up: {t_rm_recompute / t_rm_cached:.1f}× with a reward model, "
        f"{t_recompute / t_cached:.1f}× with three cheap rules only"
    )


if __name__ == "__main__":
    main()
