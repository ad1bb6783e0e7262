"""Multi-objective GRPO rewards: one pipeline, several aggregation methods, per-sample attribution.

    python examples/aggregation_grpo.py

Four completions per prompt are scored on two objectives by built-in rule sources; the same
reward vectors are then turned into a GRPO reward by a weighted sum after GDPO's per-group
normalisation, by max-min, by softmin, by the Pareto rank within each group and by robust
(RMOD) weights. Each method explains its totals (the binding objective, the front...).
"""

from __future__ import annotations

import rewardhub as rh
from rewardhub.aggregate import binding_counts

SPEC = {
    "sources": [
        {"type": "length", "config": {"target": 40, "objective": "brevity"}},
        {
            "type": "regex",
            "config": {"patterns": [{"pattern": r"\\boxed\{[^}]*\}", "objective": "format"}]},
        },
    ],
    "normalize": {"method": "group"},
    "aggregate": {"method": "weighted"},
}

COMPLETIONS = [
    "The answer is \\boxed{4}.",
    "Let me think step by step about two plus two, which is four: \\boxed{4}, as expected here.",
    "4",
    "Two and two make four, a fact known since antiquity and repeated in every textbook I know.",
]
samples = [
    rh.Sample(prompt=prompt, completion=c) for prompt in ("2+2?", "3+1?") for c in COMPLETIONS
]

with rh.Pipeline.from_spec(SPEC, hub=rh.Hub()) as pipe:
    for method, params in [
        ("weighted", {}),
        ("maxmin", {}),
        ("softmin", {"tau": 0.5}),
        ("pareto", {}),
        ("robust", {"lam": 0.5}),
    ]:
        res = pipe.with_aggregator(method, **params).score(samples)
        totals = ", ".join(f"{t:+.2f}" for t in res.total[:4])
        print(f"{method:>9}: {totals}")
        per = res.diagnostics["per_sample"]
        if method in ("maxmin", "softmin"):
            print(f"{'':>11}binding per objective: {binding_counts(res.diagnostics)}")
        if method == "pareto":
            print(f"{'':>11}fronts of group 1: {[per[i]['front'] for i in range(4)]}")
        if method == "robust":
            print(f"{'':>11}w* of group 1: {per[0]['weights']}")
