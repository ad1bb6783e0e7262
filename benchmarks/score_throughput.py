"""``rewardhub score`` throughput against the same pipeline called in memory, in one run.

    python benchmarks/score_throughput.py [--lines 200000] [--big 2000000] [--quick]

1. A spec of three rule sources (``length``, ``regex``, ``keywords``) over ``--lines`` JSONL
   lines: the command (a subprocess, start-up included) against ``Pipeline.score`` on the same
   samples in chunks of 1,000 (samples built beforehand). Goal: ratio ≤ 1.5.
2. The same command on ``--big`` lines (10× by default): time ≤ 11× the small run's, and peak
   memory flat (ratio of peak RSS ≤ 1.5).
3. A spec with a model source run twice on the same file with the same ``--cache``: the
   cached re-run against the first, counting only the scoring of the lines (each run's fixed
   cost, the same command on one line of the file, is taken off: start-up, imports, model
   load, or their absence when everything is cached). Two
   models: MiniLM-L6 (``embedding-similarity`` on the packaged all-MiniLM-L6-v2, 22M
   parameters, the smallest real model a spec would hold; goal ≥ 50× faster, ratio ≤ 0.02)
   and a tiny random-weight transformer (benchmarks/_tiny_rm.py, ~0.5 ms a line: a stress
   figure, where the re-run's own per-line cost shows). The re-run reads the file ten times
   over with no memory cache (every line from disk) and its time is divided by ten.

The command spreads chunks of a rule spec over worker processes (``--workers``, one per CPU
by default for inputs of 8 MiB or more); ``--workers 1`` is reported beside it.

``--quick`` (CI): 20k and 200k lines, 500 lines for the models.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import report  # noqa: E402

RULES = """
sources:
  - id: len
    type: length
    config: {target: 60}
  - id: digits
    type: regex
    config: {pattern: "\\\\d+"}
  - id: kw
    type: keywords
    config: {required: [answer, therefore]}
aggregate: {method: weighted}
"""

MODEL = """
sources:
  - id: rm
    type: python
    config: {function: "benchmarks._tiny_rm:score_batch", batched: true, objectives: [rm]}
normalize: none
cache: {memory_items: 0}
"""

MINILM = """
sources:
  - id: on_topic
    type: embedding-similarity
    config: {exemplars: ["The answer is therefore a number we can say things about."]}
normalize: none
cache: {memory_items: 0}
"""

WORDS = [
    "the",
    "answer",
    "is",
    "therefore",
    "we",
    "get",
    "a",
    "number",
    "of",
    "things",
    "to",
    "say",
    "about",
    "it",
]


def make_lines(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
            fh.write(json.dumps({"prompt": f"q{i % 997}", "completion": f"{text} {i}"}) + "\n")


def run_score(spec: Path, inp: Path, out: Path, *extra: str) -> tuple[float, int, str]:
    """Wall time, peak RSS (kB) and output of one ``rewardhub score`` subprocess."""
    code = "import sys; from rewardhub.cli import main; sys.argv[0] = 'rewardhub'; main()"
    cmd = [sys.executable, "-c", code, "score", str(spec), str(inp), "-o", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    took = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"rewardhub score failed:\n{proc.stdout}\n{proc.stderr}")
    return took, _peak_rss_of_last_child(), proc.stdout + proc.stderr


_SEEN_RSS = 0


def _peak_rss_of_last_child() -> int:
    """ru_maxrss of RUSAGE_CHILDREN is the largest child so far: runs go small → big, so a
    larger peak shows as a larger number (an equal one means the big run was no larger)."""
    global _SEEN_RSS
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    _SEEN_RSS = max(_SEEN_RSS, peak)
    return peak


def in_memory(spec_text: str, inp: Path) -> float:
    import yaml

    import rewardhub as rh

    samples = [rh.Sample.from_dict(json.loads(line)) for line in inp.open()]
    with rh.Pipeline.from_spec(yaml.safe_load(spec_text)) as pipe:
        pipe.score(samples[:1000])  # warm: imports, the loop thread
        start = time.perf_counter()
        for i in range(0, len(samples), 1000):
            pipe.score(samples[i : i + 1000])
        return time.perf_counter() - start


def startup() -> float:
    """The command's fixed cost: interpreter, imports, an empty file."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "s.yaml"
        spec.write_text(RULES)
        empty = Path(tmp) / "e.jsonl"
        empty.write_text("")
        return min(run_score(spec, empty, Path(tmp) / "o.jsonl")[0] for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--big", type=int, default=0, help="default: 10 × --lines")
    parser.add_argument("--model-lines", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true", help="CI size: 20k/200k, 2k model")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.big, args.model_lines = 20_000, 200_000, 500
    big = args.big or 10 * args.lines
    rows: list[tuple[str, float, float, str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spec = d / "rules.yaml"
        spec.write_text(RULES)
        small, large = d / "small.jsonl", d / "large.jsonl"
        make_lines(small, args.lines)
        make_lines(large, big)

        base = in_memory(RULES, small)
        ours, rss_small, _ = run_score(spec, small, d / "o1.jsonl")
        rows.append(
            (
                f"score {args.lines:,} lines (3 rules) vs in-memory pipeline",
                ours,
                base,
                "≤ 1.5",
                ours <= 1.5 * base,
            )
        )
        one_process, _, _ = run_score(spec, small, d / "o1w.jsonl", "--workers", "1")
        print(
            f"  score: {args.lines / ours:,.0f} lines/s ({args.lines / one_process:,.0f} with "
            f"--workers 1: {one_process / base:.2f}× in-memory); start-up {startup():.2f} s"
        )
        ours_big, rss_big, _ = run_score(spec, large, d / "o2.jsonl")
        rows.append(
            (
                f"score {big:,} lines vs {args.lines:,} lines",
                ours_big,
                ours,
                f"≤ {big / args.lines:.0f} × 1.1",
                ours_big <= 1.1 * (big / args.lines) * ours,
            )
        )
        print(
            f"  peak RSS: {rss_small / 1024:.0f} MB at {args.lines:,}, {rss_big / 1024:.0f} MB at {big:,}"
        )
        rows.append(
            (
                f"peak RSS {big:,} vs {args.lines:,} lines (MB → ratio)",
                rss_big / 1024 / 1e3,
                rss_small / 1024 / 1e3,
                "≤ 1.5",
                rss_big <= 1.5 * rss_small,
            )
        )

        models = (
            ("MiniLM-L6 embedding", MINILM, args.model_lines),
            ("tiny random model", MODEL, 10 * args.model_lines),
        )
        for name, text, n in models:
            model_in = d / f"model{n}.jsonl"
            make_lines(model_in, n, seed=1)
            one = d / "one.jsonl"  # the first line of model_in: cached by the full run too
            one.write_bytes(model_in.read_bytes().split(b"\n", 1)[0] + b"\n")
            # the cached re-run reads the file ten times over (every line from the disk
            # cache: the specs keep no memory cache), far above the start-up's noise
            tenfold = d / "tenfold.jsonl"
            tenfold.write_bytes(model_in.read_bytes() * 10)
            model_spec = d / "model.yaml"
            model_spec.write_text(text)
            cache = str(d / f"{len(rows)}.sqlite")

            def timed(
                inp: Path, out: str, cache: str = cache, model_spec: Path = model_spec
            ) -> tuple[float, str]:
                took, _, said = run_score(model_spec, inp, d / out, "--cache", cache)
                return took, said

            # each run's fixed cost (start-up, imports, model load) is the same command on
            # one line: taken off both, only the scoring of the other lines is compared
            load, _ = timed(one, "m0.jsonl")
            first, _ = timed(model_in, "m1.jsonl")
            again, said = timed(tenfold, "m2.jsonl")
            again_one = min(timed(one, "m3.jsonl")[0] for _ in range(3))
            assert f"{10 * n} cached results reused, 0 computed" in " ".join(said.split()), said
            real = name.startswith("MiniLM")
            cold, warm = first - load, max((again - again_one) / 10, 1e-3)
            rows.append(
                (
                    f"cached re-run, {n:,} lines, {name}",
                    warm,
                    cold,
                    "≤ 0.02" if real else "(stress)",
                    warm * 50 <= cold or not real,
                )
            )
            print(
                f"  {name}: first {first:.2f} s, cached ×10 {again:.2f} s; on one line "
                f"{load:.2f} s and {again_one:.2f} s cached"
            )
    report(rows)


if __name__ == "__main__":
    main()
