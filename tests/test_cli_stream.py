"""`rewardhub score` streams, keeps finished work, and turns odd input into rejected lines."""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import RunSummary, build_app

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "demo.yaml"
runner = CliRunner()
OK = json.dumps({"prompt": "p", "completion": "fine"})


def run(*args: object) -> tuple[int, str]:
    result = runner.invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return result.exit_code, result.output


def rows_of(path: Path) -> list[dict[str, object]]:
    """Parse a file as strict UTF-8 JSON lines (NaN/Infinity are not JSON)."""

    def no_constant(name: str) -> None:
        raise AssertionError(f"non-standard JSON {name} in output")

    text = path.read_bytes().decode("utf-8")
    return [json.loads(line, parse_constant=no_constant) for line in text.splitlines()]


def cli(*args: object, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen[str]:
    """The real console entry point in a child process, with this checkout's package."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", "from rewardhub.cli import main; main()", *map(str, args)],
        env=full,
        # a test run started in the background has SIGINT ignored, and children inherit that:
        # give the CLI the default disposition, so that Ctrl-C reaches it as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


HOSTILE = [
    ('{"prompt": "p", "completion": "cut \\ud83d emoji"}', "lone surrogate \\ud83d"),
    ('{"prompt": "p", "completion": "x", "metadata": {"k": "\\udcff"}}', "lone surrogate \\udcff"),
    ('{"prompt": "p", "completion": "x", "m": ' + "[" * 1000 + "]" * 1000 + "}", "nested deeper"),
    ('{"prompt": "p", "completion": "x", "m": ' + "[" * 101 + "]" * 101 + "}", "nested deeper"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 100"),
    ('{"prompt": "p", "completion": "x", "score": NaN}', "NaN is not standard JSON"),
    ('{"prompt": "p", "completion": "x", "s": -Infinity}', "-Infinity is not standard JSON"),
    ('{"prompt": "p", "completion": "x", "s": 1e999}', "out of range for a float"),
    ('{"prompt": "p", "completion": "x", "s": ' + "9" * 5000 + "}", "invalid JSON"),
    ('{"prompt": "p", "completion": 5}', "completion"),
]


@pytest.mark.parametrize(("line", "reason"), HOSTILE)
def test_odd_lines_are_rejected_lines_and_output_is_strict_utf8_json(
    tmp_path: Path, line: str, reason: str
) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(f"{OK}\n{line}\n{OK}\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    code, text = run("score", SPEC, inp, "-o", out)
    assert code == 1 and "line 2:" in text and "--skip-invalid" in text
    code, text = run("score", SPEC, inp, "-o", out, "--skip-invalid")
    assert code == 0, text
    rows = rows_of(out)
    assert [r.get("line") for r in rows] == [None, 2, None]
    assert reason in str(rows[1]["rejected"]) and rows[1]["total"] is None
    assert all(isinstance(r["total"], float) for r in (rows[0], rows[2]))
    (reject,) = rows_of(tmp_path / "o.jsonl.rejects.jsonl")
    assert reject == {"line": 2, "rejected": rows[1]["rejected"], "text": line}


def test_valid_surrogate_pairs_and_unicode_round_trip(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        '{"prompt": "p", "completion": "emoji \\ud83d\\ude00 and é", "id": "\\u00e9"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "o.jsonl"
    assert run("score", SPEC, inp, "-o", out)[0] == 0
    (row,) = rows_of(out)
    assert row["completion"] == "emoji \U0001f600 and é" and row["id"] == "é"


def test_a_huge_line_is_rejected_without_being_held(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    huge = json.dumps({"prompt": "p", "completion": "x" * 5000})
    inp.write_text(f"{OK}\n{huge}\n{OK}", encoding="utf-8")  # last line without newline
    out = tmp_path / "o.jsonl"
    code, text = run("score", SPEC, inp, "-o", out, "--skip-invalid", "--max-line-bytes", 1000)
    assert code == 0, text
    rows = rows_of(out)
    assert len(rows) == 3 and "longer than 1,000 bytes" in str(rows[1]["rejected"])
    assert rows[2]["completion"] == "fine"


def test_stale_result_fields_are_not_copied(tmp_path: Path) -> None:
    stale = {
        "prompt": "p",
        "completion": "",  # the politeness source abstains: no value this run
        "rewards": {"brevity": 99.0},
        "total": 99.0,
        "std": {"brevity": 1.0},
        "reasons": {"old": "stale reason"},
        "explain": {"old": 1},
        "keep": "me",
    }
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(stale) + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    assert run("score", SPEC, inp, "-o", out)[0] == 0
    (row,) = rows_of(out)
    assert row["keep"] == "me" and "std" not in row and "explain" not in row
    assert "old" not in row["reasons"] and row["total"] != 99.0  # type: ignore[operator]
    assert row["rewards"]["brevity"] != 99.0  # type: ignore[index]
    assert "metadata" not in row  # the stale fields did not become metadata either


def test_many_chunks_keep_input_order(tmp_path: Path) -> None:
    lines = [json.dumps({"prompt": "p", "completion": "w " * i, "i": i}) for i in range(25)]
    lines[7] = "oops"
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    code, text = run("score", SPEC, inp, "-o", out, "--chunk-size", 4, "--skip-invalid")
    assert code == 0, text
    rows = rows_of(out)
    assert [r.get("i", r.get("line")) for r in rows] == [*range(7), 8, *range(8, 25)]
    assert "24 scored" in text


# -- fail before the work ---------------------------------------------------------------------


def test_output_problems_are_reported_before_scoring(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(OK + "\n", encoding="utf-8")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (tmp_path / "missing" / "o.jsonl", "does not exist"),
        (a_file / "o.jsonl", "is not a directory"),
        (tmp_path, "is a directory"),
        (Path("/proc/version"), "cannot write"),
    ]
    for out, words in cases:
        code, text = run("score", SPEC, inp, "-o", out)
        assert code == 1 and words in text, (out, text)
        assert "scored" not in text and "Traceback" not in text
    out = tmp_path / "o.jsonl"
    code, text = run("score", tmp_path / "nope.yaml", inp, "-o", out)  # a bad spec: no leftovers
    assert code == 1 and "cannot read spec file" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "in.jsonl"]
    for bad in ("a=inf", "a=1e308", "a=nan"):
        code, text = run("score", SPEC, inp, "-o", out, "--weights", bad)
        assert code == 1 and "finite number" in text, text


def test_bad_cache_paths_are_reported_before_scoring_and_never_emptied(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(OK + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    code, text = run("score", SPEC, inp, "-o", out, "--cache", tmp_path / "no" / "c.sqlite")
    assert code == 1 and "does not exist" in text and not out.exists()
    # a mistyped --cache naming the input: refused, and the input is left untouched
    before = inp.read_bytes()
    for extra in ([], ["--fresh-cache"]):
        code, text = run("score", SPEC, inp, "-o", out, "--cache", inp, *extra)
        assert code == 1 and "not an SQLite file" in text
        assert inp.read_bytes() == before
    code, text = run("score", SPEC, inp, "-o", out, "--cache", tmp_path)
    assert code == 1 and "is a directory" in text


def test_a_named_cache_is_kept_and_fresh_cache_is_explicit(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(OK + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    cache = tmp_path / "mine.sqlite"
    assert run("score", SPEC, inp, "-o", out, "--cache", cache)[0] == 0
    size = cache.stat().st_size
    code, text = run("score", SPEC, inp, "-o", out, "--cache", cache)  # no --resume: kept
    # the spec's one non-rule source comes from the cache; its two cheap rules are recomputed
    assert code == 0 and "1 cached results reused, 2 computed" in " ".join(text.split())
    assert cache.stat().st_size >= size
    code, text = run("score", SPEC, inp, "-o", out, "--cache", cache, "--fresh-cache")
    assert code == 0 and "0 cached results reused, 3 computed" in " ".join(text.split())
    code, text = run("score", SPEC, inp, "-o", out, "--resume", "--fresh-cache")
    assert code == 1 and "choose one" in text


# -- concurrency ------------------------------------------------------------------------------


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(OK + "\n", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    out.write_text("previous\n")
    fd = os.open(tmp_path / "o.jsonl.lock", os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds it
    try:
        code, text = run("score", SPEC, inp, "-o", out)
    finally:
        os.close(fd)
    assert code == 1 and "another `rewardhub score` (pid 4242) is writing" in text
    assert out.read_text() == "previous\n"
    assert run("score", SPEC, inp, "-o", out)[0] == 0  # lock released: fine
    assert not (tmp_path / "o.jsonl.lock").exists()


SLOW_SOURCE = """
import os, time
HOLD = os.path.join(os.path.dirname(__file__), "hold")

def score(sample):
    while sample.completion == "slow" and os.path.exists(HOLD):
        time.sleep(0.05)
    return float(len(sample.completion))
"""


def _slow_spec(tmp_path: Path) -> Path:
    (tmp_path / "slow.py").write_text(textwrap.dedent(SLOW_SOURCE))
    (tmp_path / "hold").write_text("")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "sources:\n  - type: python\n    config: {function: ./slow.py:score, objectives: [n]}\n"
    )
    return spec


def _wait_for(cond: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_two_concurrent_processes_never_interleave(tmp_path: Path) -> None:
    spec = _slow_spec(tmp_path)
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps({"prompt": "p", "completion": "a" * i}) for i in range(1, 6)]
    inp.write_text("\n".join([*lines, json.dumps({"prompt": "p", "completion": "slow"})]) + "\n")
    out = tmp_path / "o.jsonl"
    first = cli("score", spec, inp, "-o", out, "--chunk-size", 2)
    try:
        _wait_for(
            lambda: (
                (tmp_path / "o.jsonl.partial").exists()
                and (tmp_path / "o.jsonl.partial").stat().st_size > 0
            )
        )
        second = cli("score", spec, inp, "-o", out)
        text, _ = second.communicate(timeout=60)
        assert second.returncode == 1 and "is writing" in text and "Traceback" not in text
        (tmp_path / "hold").unlink()
        text, _ = first.communicate(timeout=60)
        assert first.returncode == 0, text
    finally:
        first.kill()
    assert [r["rewards"]["n"] for r in rows_of(out)] == [1, 2, 3, 4, 5, 4]  # type: ignore[index]


def test_ctrl_c_stops_promptly_keeps_lines_and_resume_finishes(tmp_path: Path) -> None:
    spec = _slow_spec(tmp_path)
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps({"prompt": "p", "completion": "a" * i}) for i in range(1, 5)]
    lines.insert(2, json.dumps({"prompt": "p", "completion": "slow"}))
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.jsonl"
    partial = tmp_path / "o.jsonl.partial"
    proc = cli("score", spec, inp, "-o", out, "--chunk-size", 2)
    try:
        _wait_for(lambda: partial.exists() and partial.read_bytes().count(b"\n") == 2)
        time.sleep(0.3)  # inside the slow chunk
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        text, _ = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        proc.kill()
    assert proc.returncode == 130, text
    assert took < 10 and "--resume" in text
    assert [r["rewards"]["n"] for r in rows_of(partial)] == [1, 2]  # type: ignore[index]
    assert not out.exists()
    (tmp_path / "hold").unlink()
    proc = cli("score", spec, inp, "-o", out, "--resume")
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, text
    # the two lines already written are kept, never recomputed: only the other 3 are scored
    assert "2 lines kept from the interrupted run, 0 cached results reused, 3 computed" in " ".join(
        text.split()
    )
    assert [r["rewards"]["n"] for r in rows_of(out)] == [1, 2, 4, 3, 4]  # type: ignore[index]
    assert not partial.exists()


# -- the summary ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_run_summary_matches_numpy_over_random_chunks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 400)), int(rng.integers(1, 4))
    values = rng.normal(rng.uniform(-1e3, 1e3), rng.uniform(1e-3, 1e3), size=(n, k))
    values[rng.random((n, k)) < rng.uniform(0, 0.5)] = math.nan
    totals = rng.normal(size=n)
    names = tuple(f"o{j}" for j in range(k))
    summary = RunSummary()
    cuts = sorted(rng.integers(0, n, size=int(rng.integers(0, 8))).tolist())
    for a, b in zip([0, *cuts], [*cuts, n]):
        batch = rh.RewardBatch(values[a:b], names)
        summary.add(rh.ScoreResult(batch, totals[a:b]))
    assert summary.rows == n
    for j, name in enumerate((*names, "total")):
        col = totals if name == "total" else values[:, j]
        present = col[~np.isnan(col)]
        count, mean, std, lo, hi = summary.stats(name)
        assert count == present.size
        if present.size:
            np.testing.assert_allclose(
                [mean, std, lo, hi],
                [present.mean(), present.std(), present.min(), present.max()],
                rtol=1e-9,
                atol=1e-9 * max(1.0, float(np.abs(present).max())),
            )


# -- clear errors in the other commands --------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00binary", "not valid UTF-8"),
        (b'{"rewards": {"a": "high", "b": 1}}\n', 'rewards.a is "high", not a number'),
        (b'{"rewards": {"a": [1], "b": 1}}\n', "rewards.a is [1], not a number"),
        (b'{"rewards": {"a": true, "b": 1}}\n', "not a number"),
        (b'{"rewards": {"a": 1, "b": 1}}\n{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", "line 2"),
        (b'{"rewards": {"a": NaN, "b": 1}}\n', "NaN is not standard JSON"),
    ],
)
def test_pareto_bad_files_are_clear_errors(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "scored.jsonl"
    path.write_bytes(content)
    code, text = run("pareto", path)
    assert code == 1 and words in text and "Traceback" not in text, text


def test_schema_and_plot_into_a_missing_directory_are_clear_errors(tmp_path: Path) -> None:
    code, text = run("schema", "-o", tmp_path / "nope" / "schema.json")
    assert code == 1 and "does not exist" in text
    scored = tmp_path / "scored.jsonl"
    scored.write_text('{"rewards": {"a": 1, "b": 0}}\n{"rewards": {"a": 0, "b": 1}}\n')
    code, text = run("pareto", scored, "--plot", tmp_path / "nope" / "front.png")
    assert code == 1 and "does not exist" in text and "hypervolume" not in text
    code, text = run("schema", "-o", tmp_path / "schema.json")
    assert code == 0 and json.loads((tmp_path / "schema.json").read_text())["title"]
