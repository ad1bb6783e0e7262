"""Speed of `rewardhub eval` and of the report, each against a baseline measured in the same run.

    python benchmarks/evaluation.py [--quick]

- eval, 10k pairs, rule spec: the whole command (a fresh process) against `rewardhub score` of
  the same 20k completions (the scoring it cannot avoid). Goal: under 10 s.
- eval, 1k pairs, the MiniLM preference head (a head trained here on 64 pairs): the command
  against `rewardhub score` of the 2k completions. Goal: under 60 s.
- report, 100k scored samples: time for chromium to open and lay out the page (playwright,
  the system browser), against an empty page in the same browser. Goal: under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import report  # noqa: E402

RULES = """objectives: [brevity, polite]
sources:
  - {id: len, type: length, config: {target: 20, unit: chars}}
  - id: pol
    type: regex
    config: {patterns: [{pattern: "(?i)please", objective: polite}]}
aggregate: {method: maxmin}
"""


def write_pairs(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "answer",
        "because",
        "please",
        "thanks",
        "so",
        "which",
        "time",
        "water",
        "light",
    ]
    with path.open("w") as fh:
        for i in range(n):
            c = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            r = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            fh.write(json.dumps({"prompt": f"question {i}", "chosen": c, "rejected": r}) + "\n")


def completions(pairs: Path, out: Path) -> None:
    with pairs.open() as src, out.open("w") as fh:
        for line in src:
            row = json.loads(line)
            for side in ("chosen", "rejected"):
                fh.write(json.dumps({"prompt": row["prompt"], "completion": row[side]}) + "\n")


def cli(*args: str) -> float:
    """Wall seconds of one command in a fresh process (its CPU seconds are printed: on a
    shared machine they show what the command costs when the wall time includes waiting)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from rewardhub.cli import main; main()", *args],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"rewardhub {args[0]} {Path(args[2]).name}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    return wall


def eval_vs_score(spec: Path, pairs: Path, tmp: Path) -> tuple[float, float]:
    completions(pairs, tmp / "completions.jsonl")
    ours = cli("eval", str(spec), str(pairs), "--json")
    base = cli("score", str(spec), str(tmp / "completions.jsonl"), "-o", str(tmp / "s.jsonl"))
    return ours, base


def train_head(tmp: Path) -> Path:
    from rewardhub.models import embed, load_sentence_model
    from rewardhub.preference import Pair, train

    st = load_sentence_model("minilm")
    rng = random.Random(1)
    pairs = [
        Pair(f"q{i}", "please, here is a careful answer", rng.choice(["no", "whatever", "meh"]))
        for i in range(64)
    ]
    head = train(pairs, lambda t: embed(st, t), embedder="minilm", epochs=50)
    return head.save(tmp / "head")


def report_open(n: int, tmp: Path) -> tuple[float, float, float]:
    """(seconds to build the report, to open it, to open an empty page) with n samples."""
    from playwright.sync_api import sync_playwright

    from rewardhub.report import ScoredData, build_report

    rng = np.random.default_rng(0)
    v = rng.normal(size=(n, 3))
    with (tmp / "scored.jsonl").open("w") as fh:
        for i, row in enumerate(v.tolist()):
            rec = {"rewards": dict(zip("abc", row)), "total": min(row)}
            if i % 50 == 0:
                rec["rewards"]["c"] = None
                rec["outcomes"] = {"c": "unscorable"}
                rec["total"] = None
            rec["explain"] = {"binding": "abc"[int(np.argmin(row))]}
            fh.write(json.dumps(rec) + "\n")
    t0 = time.perf_counter()
    html = build_report(ScoredData.read(tmp / "scored.jsonl"))
    build_s = time.perf_counter() - t0
    (tmp / "report.html").write_text(html)
    (tmp / "empty.html").write_text("<!doctype html><title>x</title><p>x</p>")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        times = {}
        for name in ("empty", "report", "empty", "report"):
            page = b.new_page()
            t0 = time.perf_counter()
            page.goto((tmp / f"{name}.html").as_uri(), wait_until="load")
            page.evaluate("document.body.getBoundingClientRect().height")  # forces layout
            times[name] = min(times.get(name, 1e9), time.perf_counter() - t0)
            page.close()
        b.close()
    return build_s, times["report"], times["empty"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    args = ap.parse_args()
    n_rule, n_head, n_report = (2000, 200, 10_000) if args.quick else (10_000, 1000, 100_000)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        spec = tmp / "rules.yaml"
        spec.write_text(RULES)
        write_pairs(tmp / "pairs.jsonl", n_rule)
        ours, base = eval_vs_score(spec, tmp / "pairs.jsonl", tmp)
        rows.append((f"eval {n_rule} pairs, rule spec (vs score)", ours, base, "< 10 s", ours < 10))
        try:
            head = train_head(tmp)
        except Exception as exc:  # the offline model packages are an extra
            print(f"skipped the preference-head run: {exc}")
        else:
            (tmp / "head.yaml").write_text(
                f"sources: [{{id: rm, type: preference-head, config: {{path: {head}}}}}]\n"
            )
            write_pairs(tmp / "pairs_head.jsonl", n_head, seed=1)
            ours, base = eval_vs_score(tmp / "head.yaml", tmp / "pairs_head.jsonl", tmp)
            rows.append(
                (f"eval {n_head} pairs, MiniLM head (vs score)", ours, base, "< 60 s", ours < 60)
            )
        if shutil.which("chromium") or shutil.which("chromium-browser"):
            build_s, open_s, empty_s = report_open(n_report, tmp)
            print(f"report of {n_report} samples built in {build_s:.2f} s")
            rows.append(
                (
                    f"report open, {n_report} samples (vs empty page)",
                    open_s,
                    empty_s,
                    "< 2 s",
                    open_s < 2,
                )
            )
        else:
            print("skipped the report timing: no chromium")
    report(rows)


if __name__ == "__main__":
    main()
