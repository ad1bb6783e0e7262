"""Soak `rewardhub score`: a generated file mixing hostile lines with sources that hang, crash
and abstain on chosen completions. Prints the peak RSS at N and 10·N lines (goal: ratio ≤ 1.5,
memory flat in the number of lines) and how long the command takes to exit after a time-out.

    python benchmarks/cli_soak.py [--lines 20000]

The input generator and checker are shared with tests/test_cli_soak.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINE_BYTES = 16_384
TIMEOUT_S = 1.0

SOURCE = """
import time

def score(sample):
    c = sample.completion
    if c == "hang":
        time.sleep(3600)  # ignores its deadline, as a hostile or buggy source would
    if c == "crash":
        raise RuntimeError("boom")
    if c == "abstain":
        return None
    return float(len(c) % 7)
"""

SPEC = f"""
sources:
  - type: length
    config: {{target: 40}}
  - id: soak
    type: python
    timeout_s: {TIMEOUT_S}
    config: {{function: ./soak_source.py:score, objectives: [soak]}}
aggregate: weighted
"""

#: (every how many lines, the line's text or None for a plain sample, whether it is rejected)
HOSTILE: list[tuple[int, str, bool]] = [
    (997, '{"prompt": "p", "completion": ', True),  # cut JSON
    (991, '{"prompt": "p", "completion": "cut \\ud83d"}', True),  # lone surrogate
    (983, '{"prompt": "p", "completion": "x", "m": ' + "[" * 2000 + "]" * 2000 + "}", True),
    (977, '{"prompt": "p", "completion": "x", "s": NaN}', True),
    (971, json.dumps({"prompt": "p", "completion": "y" * (MAX_LINE_BYTES + 10)}), True),
    (499, json.dumps({"prompt": "p", "completion": "abstain"}), False),
    (4999, json.dumps({"prompt": "p", "completion": "crash"}), False),
]


def write_input(path: Path, n: int, hangs: int = 1) -> list[bool]:
    """Write ``n`` lines; returns, per line, whether it must come back rejected. ``hangs``
    lines hang the python source (spread through the file)."""
    rejected = []
    hang_at = {n * (h + 1) // (hangs + 1) for h in range(hangs)}
    with path.open("w", encoding="utf-8") as fh:
        for i in range(1, n + 1):
            text, bad = json.dumps({"prompt": f"q{i}", "completion": f"answer {i}", "i": i}), False
            near_hang = any(abs(i - h) < 300 for h in hang_at)  # keep the crash out of its batch
            for every, hostile, is_bad in HOSTILE:
                if i % every == 0 and not (near_hang and "crash" in hostile):
                    text, bad = hostile, is_bad
                    break
            if i in hang_at:
                text, bad = json.dumps({"prompt": "p", "completion": "hang"}), False
            fh.write(text + "\n")
            rejected.append(bad)
    return rejected


def setup(folder: Path) -> Path:
    (folder / "soak_source.py").write_text(SOURCE, encoding="utf-8")
    spec = folder / "soak.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return spec


def run_cli(folder: Path, n: int, hangs: int = 1) -> tuple[float, float, list[bool], Path]:
    """Score a fresh n-line soak file in a child process: (peak RSS MiB, wall s, which lines
    must be rejected, the output path)."""
    spec = setup(folder)
    inp = folder / f"in{n}.jsonl"
    rejected = write_input(inp, n, hangs)
    out = folder / f"out{n}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    args = ["score", spec, inp, "-o", out, "--skip-invalid", "--max-line-bytes", MAX_LINE_BYTES]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from rewardhub.cli import main; main()", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read()  # until the child closes it (exits)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"score failed ({proc.returncode}): {err.decode()[-2000:]}")
    return usage.ru_maxrss / 1024, wall, rejected, out


def exit_delay(folder: Path, lines: int = 200) -> tuple[float, float]:
    """Score a file with one call that hangs past its time-out: (seconds from the output
    appearing to the process exit, total wall seconds)."""
    spec = setup(folder)
    inp = folder / "hang.jsonl"
    write_input(inp, lines, hangs=1)
    out = folder / "hang.out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from rewardhub.cli import main; main()",
            "score",
            str(spec),
            str(inp),
            "-o",
            str(out),
            "--skip-invalid",
            "--max-line-bytes",
            str(MAX_LINE_BYTES),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not out.exists() and proc.poll() is None:
        time.sleep(0.005)
    written = time.perf_counter()
    proc.wait(timeout=600)
    done = time.perf_counter()
    return done - written, done - start


def check_output(out: Path, rejected: list[bool]) -> dict[str, int]:
    """Every line accounted for, in order: scored lines carry their ``i``, rejected lines
    their line number. Returns counts of scored, rejected, abstained (could not score) and
    timed-out lines (a hang is a failed check: the failing value with its reason)."""
    counts = {"scored": 0, "rejected": 0, "abstained": 0, "timeout": 0}
    with out.open(encoding="utf-8") as fh:
        rows = (json.loads(line) for line in fh)
        for number, (bad, row) in enumerate(zip(rejected, rows, strict=True), start=1):
            if bad:
                assert row["line"] == number and row["total"] is None, (number, row)
                counts["rejected"] += 1
                continue
            assert "rejected" not in row, (number, row)
            assert row.get("i", number) == number, (number, row)
            counts["scored"] += 1
            reason = row.get("reasons", {}).get("soak", "")
            if row["rewards"]["soak"] is None:
                counts["abstained"] += 1
            elif reason.startswith("failed: timeout"):
                counts["timeout"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000, help="the smaller run (×10 too)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        small_rss, small_wall, rejected, out = run_cli(folder, args.lines)
        check_output(out, rejected)
        big_rss, big_wall, rejected, out = run_cli(folder, 10 * args.lines)
        counts = check_output(out, rejected)
        delay, wall = exit_delay(folder)
    print(f"{'lines':>9} {'peak RSS':>10} {'wall':>8}")
    print(f"{args.lines:>9,} {small_rss:>8.0f} MB {small_wall:>7.1f}s")
    print(f"{10 * args.lines:>9,} {big_rss:>8.0f} MB {big_wall:>7.1f}s")
    print(f"peak RSS ratio (10x lines / 1x): {big_rss / small_rss:.2f} (goal ≤ 1.5)")
    print(f"lines at 10x: {counts}")
    print(
        f"exit after a time-out: the run with a call hung past its {TIMEOUT_S:g}s time-out "
        f"exited {delay:.2f}s after writing its output ({wall:.2f}s in all)"
    )


if __name__ == "__main__":
    main()
