"""Engine overhead, cache speed-up and import time.

    python benchmarks/engine.py

1. 10k samples through a pipeline of three rule sources (length, regex, python) vs a bare
   loop calling the same sources' ``score`` directly: goal ratio ≤ 1.5.
2. The same 10k samples again (new Sample objects, results from the cache) vs recomputing
   them with a fresh pipeline: goal ≥ 50× faster.
3. ``import rewardhub`` in a fresh interpreter (median of 7): goal < 0.3 s; the baseline is
   ``import numpy, pydantic``, the floor every import pays.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh  # noqa: E402
from benchmarks._common import best_of, report  # noqa: E402

N = 10_000
SPEC = {
    "sources": [
        {"type": "length", "config": {"target": 200, "unit": "words", "tolerance": 20}},
        {
            "type": "regex",
            "config": {
                "patterns": [
                    {"pattern": r"\\boxed\{[^}]*\}", "objective": "format"},
                    {"pattern": r"(?i)as an ai (language )?model", "objective": "format", "must_match": False},
                    {"pattern": r"\b(\w+) \1\b", "objective": "no_stutter", "must_match": False},
                ]
            },
        },
        {"type": "python", "config": {"function": "benchmarks.engine:politeness"}},
    ],
    "normalize": "zscore",
    "aggregate": {"method": "weighted"},
}
WORDS = "the of answer model please thank reward policy gradient value we so it is boxed".split()


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

    t_bare = best_of(bare, repeat=5)
    t_pipe = best_of(through_pipeline, repeat=5)

    warm = rh.Pipeline(SPEC, hub=hub)
    warm.score(samples)

    # fresh Sample objects each run (as a trainer sends): keys are recomputed, results reused
    fresh = iter([[rh.Sample(s.prompt, s.completion) for s in samples] for _ in range(6)])

    def cached() -> None:
        warm.score(next(fresh))

    t_cached = best_of(cached, repeat=5)
    assert warm.engine.stats.computed == N * 3, "the cached runs recomputed something"
    t_recompute = best_of(through_pipeline, repeat=5)

    code = "import time; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"

    def import_time(mod: str) -> float:
        runs = []
        for _ in range(7):
            out = subprocess.run([sys.executable, "-c", code.format(m=mod)], capture_output=True, text=True, check=True)
            runs.append(float(out.stdout))
        return sorted(runs)[len(runs) // 2]

    t_import = import_time("rewardhub")
    t_floor = import_time("numpy, pydantic")

    print(f"rewardhub engine benchmark: {N} samples × {len(sources)} rule sources\n")
    report(
        [
            ("pipeline vs bare loop (same sources)", t_pipe, t_bare, "≤ 1.5×", t_pipe / t_bare <= 1.5),
            ("cached re-run vs recompute", t_cached, t_recompute, "≥ 50× faster",
             t_recompute / t_cached >= 50),
            ("import rewardhub vs import numpy, pydantic", t_import, t_floor, "< 300 ms", t_import < 0.3),
        ]
    )
    print(f"\ncache speed-up: {t_recompute / t_cached:.1f}×")


if __name__ == "__main__":
    main()
