"""Rego evaluation per sample: through the ``rego`` source vs a direct regorus call.

Both evaluate the ArGen-style principle pack (specs/policies/argen) on the same samples:
the baseline sets the input and evaluates the three rules on one regorus engine; the source
adds what it does for every sample (input document, surrogate cleaning, value conversion, and
the round trip to its worker processes, where regorus runs so that a crash or a hang costs a
worker, not the run). Measured with the default 2 workers and with 1 (the per-sample cost of
the process boundary, without the parallelism). Goal: ratio ≤ 1.5 (default workers). Run as a
script to print the figures.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "specs" / "policies" / "argen"
RULES = [
    {"rule": "deny", "objective": "principles", "kind": "penalty"},
    {"rule": "allow", "kind": "boolean"},
    {"rule": "veto", "objective": "no_veto", "kind": "veto"},
]
COMPLETIONS = [
    "Adults can take {i} mg every 6 hours.",
    "Take {i} mg, but check with your pharmacist first.",
    "I will write to jane.doe@example.com about case {i}.",
    "I can't help with that (request {i}).",
    "I can't help with that, but you could ask a doctor instead. Ref {i}.",
    "Here is a plain answer number {i} with nothing to flag at all, " * 4,
]


def _samples(n: int) -> list[Any]:
    import rewardhub as rh

    prompt = "I'm Jane (jane.doe@example.com, +1 555 123 4567). How much ibuprofen can I take?"
    return [
        rh.Sample(prompt=prompt, completion=COMPLETIONS[i % len(COMPLETIONS)].format(i=i))
        for i in range(n)
    ]


def _engine(collector: bool) -> Any:
    import regorus

    engine = regorus.Engine()
    for f in sorted(PACK.glob("*.rego")):
        engine.add_policy(str(f), f.read_text(encoding="utf-8"))
    if collector:  # the same one-query module the source adds, written by hand
        engine.add_policy(
            "collect.rego",
            "package collect\nimport rego.v1\n"
            'result := [data.argen.deny, object.get(data.argen, "allow", false), data.argen.veto]\n',
        )
    return engine


def _values(deny: Any, allow: Any, veto: Any) -> list[float]:
    return [-sum(WEIGHTS[v["severity"]] for v in deny), 1.0 if allow else 0.0, 0.0 if veto else 1.0]


WEIGHTS = {"low": 0.25, "medium": 0.5, "high": 1.0, "critical": 2.0}


def _direct_per_rule(samples: list[Any]) -> tuple[float, list[list[float]]]:
    """Baseline 1: set_input, then one eval_rule call per rule (each re-derives deny)."""
    engine = _engine(collector=False)
    out = []
    start = time.perf_counter()
    for s in samples:
        engine.set_input({"prompt": s.prompt, "completion": s.completion, "metadata": {}})
        deny = json.loads(engine.eval_rule_as_json("data.argen.deny"))
        allow = engine.eval_rule("data.argen.allow")
        veto = json.loads(engine.eval_rule_as_json("data.argen.veto"))
        out.append(_values(deny, allow, veto))
    return time.perf_counter() - start, out


def _direct_one_query(samples: list[Any]) -> tuple[float, list[list[float]]]:
    """Baseline 2: set_input, then one query returning the three rules (what the source does)."""
    engine = _engine(collector=True)
    out = []
    start = time.perf_counter()
    for s in samples:
        engine.set_input({"prompt": s.prompt, "completion": s.completion, "metadata": {}})
        out.append(_values(*json.loads(engine.eval_rule_as_json("data.collect.result"))))
    return time.perf_counter() - start, out


def _source(samples: list[Any], batch: int = 256, workers: int = 2) -> tuple[float, list[Any]]:
    from rewardhub.sources.policy import Rego

    src = Rego({"policies": [str(PACK)], "package": "argen", "rules": RULES, "workers": workers})
    try:
        src.score(samples[:workers])  # start its workers outside the timing
        out: list[Any] = []
        start = time.perf_counter()
        for i in range(0, len(samples), batch):
            out.extend(src.score(samples[i : i + batch]))  # type: ignore[arg-type]
        return time.perf_counter() - start, out
    finally:
        src.close()


def bench_rego(n: int = 2000, repeats: int = 3) -> dict[str, Any]:
    """Seconds per sample (best of ``repeats``, interleaved) through the source and directly.

    ``ratio`` is the source against the direct call that evaluates the rules the same way
    (one query per sample): the source's own overhead. ``ratio_vs_per_rule`` compares with
    the plain direct use, one ``eval_rule`` per rule.
    """
    samples = _samples(n)
    best = {"per_rule": math.inf, "one_query": math.inf, "source": math.inf, "source_1": math.inf}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in (
            ("per_rule", _direct_per_rule),
            ("one_query", _direct_one_query),
            ("source", _source),
            ("source_1", lambda x: _source(x, workers=1)),
        ):
            t, rows = fn(samples)
            best[name] = min(best[name], t)
            results[name] = [[float(x) for x in row] for row in rows]
    assert (
        results["source"] == results["source_1"] == results["per_rule"] == results["one_query"]
    ), "results disagree"
    ratio = best["source"] / best["one_query"]
    return {
        "name": "rego",
        "samples": n,
        "direct_us_per_sample": best["one_query"] / n * 1e6,
        "direct_per_rule_us_per_sample": best["per_rule"] / n * 1e6,
        "source_us_per_sample": best["source"] / n * 1e6,
        "source_1_worker_us_per_sample": best["source_1"] / n * 1e6,
        "ratio_1_worker": best["source_1"] / best["one_query"],
        "ratio": ratio,
        "ratio_vs_per_rule": best["source"] / best["per_rule"],
        "goal": 1.5,
        "ok": ratio <= 1.5,
    }


def main() -> int:
    r = bench_rego()
    print(
        f"rego, {r['samples']} samples of the ArGen pack (3 rules):\n"
        f"  direct regorus, one query per sample   {r['direct_us_per_sample']:8.1f} µs/sample\n"
        f"  direct regorus, one eval_rule per rule {r['direct_per_rule_us_per_sample']:8.1f} µs/sample\n"
        f"  rego source (score, batches of 256)    {r['source_us_per_sample']:8.1f} µs/sample\n"
        f"  rego source, 1 worker process          {r['source_1_worker_us_per_sample']:8.1f} µs/sample"
        f" (ratio {r['ratio_1_worker']:.2f})\n"
        f"  ratio {r['ratio']:.2f} (goal ≤ {r['goal']}), vs per-rule calls {r['ratio_vs_per_rule']:.2f}"
    )
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
