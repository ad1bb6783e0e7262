"""Red-team audit benchmark: 200 samples × every exploit class on a rule spec.

    python benchmarks/redteam.py

The audit of specs/demo.yaml (length, regex and a python function) on 200 math samples with
every registered exploit class (8 attacks per sample and class at most, no disk cache) must
finish in under 60 s. The baseline, measured in the same run, is ``Pipeline.score`` on the
very completions the audit scores (built beforehand), in the same chunks, each run with a
fresh pipeline, interleaved, best of 3: the ratio is what the audit's attack building and bookkeeping add to scoring.
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh
from benchmarks._common import interleaved, report
from rewardhub.commands.redteam import choose_exploits
from rewardhub.redteam import audit
from rewardhub.redteam.target import build_target, hints_from

N = 200
GOAL_S = 60.0
SPEC = Path(__file__).resolve().parent.parent / "specs" / "demo.yaml"


def _lines(n: int) -> list[dict[str, str]]:
    rng = random.Random(0)
    out = []
    for _ in range(n):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        out.append(
            {
                "prompt": f"What is {a} + {b}? Explain briefly and box the answer.",
                "reference": str(a + b),
                "completion": f"Adding {a} and {b} gives {a + b}, so the answer is \\boxed{{{a + b}}}.",
            }
        )
    return out


def main() -> None:
    hub = rh.Hub()
    exploits = choose_exploits(hub.exploits, None)
    with rh.Pipeline.from_yaml(SPEC, hub=hub) as pipe:
        targets = [build_target(line, hints_from(pipe)) for line in _lines(N)]
    # the baseline: the very completions the audit scores, built beforehand, scored in the
    # same chunks; each run (ours and the baseline) gets a fresh pipeline (an empty cache)
    chunks = []
    for start in range(0, N, 16):
        batch = []
        for t in targets[start : start + 16]:
            batch += [t.sample(t.honest), t.sample(t.wrong)]
            for e in exploits:
                for attack in itertools.islice(e.attacks(t), 8):
                    batch += [t.sample(text) for text in attack.texts]
        chunks.append(batch)
    counts: dict[str, int] = {}

    def ours() -> None:
        with rh.Pipeline.from_yaml(SPEC, hub=hub) as pipe:
            counts.update(audit(pipe, targets, exploits, max_attacks=8).counts)

    def base() -> None:
        with rh.Pipeline.from_yaml(SPEC, hub=hub) as pipe:
            for batch in chunks:
                pipe.score(batch)

    t_ours, t_base = interleaved(ours, base, repeat=3)
    assert sum(map(len, chunks)) == counts["completions"]
    print(
        f"audit: {N} samples × {len(exploits)} classes = {counts['completions']} completions "
        f"scored in {t_ours:.1f} s (goal < {GOAL_S:.0f} s)"
    )
    report(
        [
            (
                f"redteam {N} samples, all classes (vs score)",
                t_ours,
                t_base,
                f"< {GOAL_S:.0f} s",
                t_ours < GOAL_S,
            )
        ]
    )


if __name__ == "__main__":
    main()
