"""``score --workers N``: chunks scored in worker processes give byte for byte the output,
rejects, summary and stops of one process; pipelines whose chunks are not independent stay
in one process, and a broken pool hands the rest of the run back to this one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import rewardhub as rh
from rewardhub import _score_pool as pool
from rewardhub._output import LockedOutput
from rewardhub._score_stream import StreamOptions, stream
from rewardhub.run_summary import RunSummary

ROOT = Path(__file__).resolve().parent.parent

#: group normalisation and a batch-relative aggregator: a chunk's result depends on all of
#: its lines, so any difference in chunk boundaries between the two ways would show
SPEC = """
sources:
  - id: len
    type: length
    config: {target: 12}
  - id: digits
    type: regex
    config: {pattern: "\\\\d+"}
  - id: kw
    type: keywords
    config: {required: [answer]}
normalize: {method: zscore, per: group}
aggregate: {method: maxmin}
"""


def score(*args: object) -> subprocess.CompletedProcess[str]:
    """The real console entry point (the default hub, as the workers build it)."""
    code = "from rewardhub.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code, "score", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def write_input(path: Path, n: int, bad_at: tuple[int, ...] = ()) -> None:
    lines = []
    for i in range(n):
        if i in bad_at:
            lines.append('{"prompt": "p", "completion": ')  # cut JSON
            continue
        words = " ".join(["answer", "is", str(i)] * (i % 5))
        lines.append(json.dumps({"prompt": f"q{i % 7}", "completion": words}))
        if i % 11 == 0:
            lines.append("")  # blank lines have no output line
    path.write_text("\n".join(lines) + "\n")


def summary_of(text: str) -> str:
    """The summary table and the counts line, without the output path."""
    return re.sub(r"→ \S+", "→ OUT", text[text.index("rewards per objective") :])


@pytest.mark.slow
def test_workers_write_what_one_process_writes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    write_input(inp, 400, bad_at=(5, 123, 399))
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.jsonl"
        done = score(spec, inp, "-o", out, "--workers", workers, "--chunk-size", 13,
                     "--skip-invalid", "--explain")  # fmt: skip
        assert done.returncode == 0, done.stderr
        rejects = tmp_path / f"out{workers}.jsonl.rejects.jsonl"
        runs[workers] = (out.read_bytes(), rejects.read_bytes(), summary_of(done.stdout))
    assert runs[1] == runs[2]
    assert runs[2][0].count(b"\n") == 400 and runs[2][1].count(b"\n") == 3


@pytest.mark.slow
def test_workers_stop_where_one_process_stops(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    write_input(inp, 200, bad_at=(150,))
    seen = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.jsonl"
        done = score(spec, inp, "-o", out, "--workers", workers, "--chunk-size", 10)
        assert done.returncode == 1
        partial = tmp_path / f"out{workers}.jsonl.partial"
        text = done.stderr.replace(str(partial), "PARTIAL")
        said = [line for line in text.splitlines() if line.startswith(("note", "error"))]
        seen[workers] = (partial.read_bytes(), said)
        assert not out.exists()
    assert seen[1] == seen[2]
    # the 151st sample is line 165 (blank lines between); the 14 chunks before it are out
    assert "line 165" in seen[2][1][1] and seen[2][0].count(b"\n") == 146


@pytest.mark.slow
def test_resume_with_workers_keeps_the_written_lines(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    write_input(inp, 120)
    out = tmp_path / "out.jsonl"
    assert score(spec, inp, "-o", out, "--workers", 1, "--chunk-size", 10).returncode == 0
    full = out.read_text().splitlines()
    # an interrupted run wrote its first three chunks (30 input lines, blank ones included:
    # the spec compares the lines of a chunk, so the resumed run must start its chunks
    # where the first run did); marked, so recomputing them would show
    n = sum(1 for line in inp.read_text().splitlines()[:30] if line.strip())
    kept = [json.dumps({**json.loads(line), "total": 123.0}) for line in full[:n]]
    out.unlink()
    (tmp_path / "out.jsonl.partial").write_text("\n".join(kept) + "\n")
    done = score(spec, inp, "-o", out, "--resume", "--workers", 2, "--chunk-size", 10)
    assert done.returncode == 0, done.stderr
    assert f"{n} lines kept" in " ".join((done.stdout + done.stderr).split())
    assert out.read_text().splitlines() == kept + full[n:]


@pytest.mark.slow
def test_a_model_source_stays_in_one_process_and_says_why(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "sources:\n  - id: f\n    type: python\n"
        "    config: {function: 'math:sqrt', objectives: [f]}\n"
    )
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    done = score(spec, inp, "-o", tmp_path / "o.jsonl", "--workers", 2)
    text = " ".join((done.stdout + done.stderr).split())
    assert "--workers 2: scoring in one process: source 'f' is not a cheap inline source" in text


def pipeline(spec: str) -> rh.Pipeline:
    import yaml

    return rh.Pipeline.from_spec(yaml.safe_load(spec))


RULES = "sources:\n  - {id: len, type: length, config: {target: 5}}\n"


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("", None),
        ("normalize: zscore\naggregate: {method: maxmin}\n", None),
        ("normalize: running\n", "'running' keeps state"),
        ("cache: {cheap_sources: true, path: CACHE}\n", "cheap sources are kept in the disk"),
        (
            "aggregate: {method: gate, gates: [{objective: brevity, min: 0}], base: {method: weighted}}\n",
            None,
        ),
    ],
)
def test_which_pipelines_may_use_workers(tmp_path: Path, extra: str, why: str | None) -> None:
    text = RULES + extra.replace("CACHE", str(tmp_path / "c.sqlite"))
    with pipeline(text) as pipe:
        reason = pool.why_not_parallel(pipe)
    assert (reason is None) if why is None else (why in str(reason))


def test_a_broken_pool_hands_the_rest_back_to_this_process(tmp_path: Path) -> None:
    """A worker that cannot start (here: its spec is gone) breaks the pool; every chunk is
    then scored here, in order, and the output is complete."""
    inp = tmp_path / "in.jsonl"
    write_input(inp, 60)
    opts = StreamOptions(None, 7, False, False, 1 << 20)
    outputs = []
    for broken in (False, True):
        out = LockedOutput(tmp_path / f"out{broken}.jsonl").open()
        summary = RunSummary()
        with pipeline(SPEC) as pipe:
            scorer = None
            if broken:
                job = pool.WorkerJob(tmp_path / "gone.yaml", inp, None, None, None, opts)
                scorer = pool.pool_scorer(job, 2, pipe)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                stream(pipe, inp, out, summary, opts, scorer)
        out.commit()
        out.release()
        outputs.append((tmp_path / f"out{broken}.jsonl").read_bytes())
        if broken:
            assert any("scoring worker process died" in str(w.message) for w in caught)
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") == 60


def test_a_summary_merged_from_chunks_equals_one_built_in_order() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=n) * 10 ** rng.uniform(-3, 3) for n in (1, 7, 100, 3)]
    chunks[2][::5] = np.nan
    whole, merged = RunSummary(), RunSummary()
    for col in chunks:
        whole._merge("x", col)
        part = RunSummary()
        part._merge("x", col)
        merged.merge(part)
    assert whole._cols == merged._cols
    values = np.concatenate(chunks)
    values = values[~np.isnan(values)]
    n, mean, std, lo, hi = merged.stats("x")
    assert n == values.size and lo == values.min() and hi == values.max()
    assert np.isclose(mean, values.mean(), rtol=1e-12) and np.isclose(std, values.std(), rtol=1e-9)


@pytest.mark.slow
def test_ctrl_c_with_workers_keeps_whole_lines_in_order_and_resume_finishes(
    tmp_path: Path,
) -> None:
    import signal
    import time

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    write_input(inp, 300_000)
    partial = tmp_path / "out.jsonl.partial"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    code = "from rewardhub.cli import main; main()"
    args = ["score", str(spec), str(inp), "-o", str(tmp_path / "out.jsonl"), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while not (partial.exists() and partial.stat().st_size > 200_000):
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.02)  # polling for the first chunks, not synchronising on time
        proc.send_signal(signal.SIGINT)
        text, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, text
    kept = partial.read_bytes()
    done = score(spec, inp, "-o", tmp_path / "out.jsonl", "--resume", "--workers", "2")
    assert done.returncode == 0, done.stderr
    one = score(spec, inp, "-o", tmp_path / "one.jsonl", "--workers", "1")
    assert one.returncode == 0, one.stderr
    full = (tmp_path / "one.jsonl").read_bytes()
    # the interrupted run wrote whole chunks, a prefix of the one-process output
    assert full.startswith(kept) and kept.endswith(b"\n")
    assert (tmp_path / "out.jsonl").read_bytes() == full


@pytest.mark.slow
def test_a_script_calling_main_without_a_main_guard_still_gets_workers(tmp_path: Path) -> None:
    """Workers re-import the calling script as multiprocessing does; rewardhub's main() must
    not run the command again there (it would die on the output's lock, and the run would
    fall back to one process)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    write_input(inp, 100)
    script = tmp_path / "run.py"
    script.write_text("from rewardhub.cli import main\nmain()\n")  # no __main__ guard
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    args = ["score", spec, inp, "-o", tmp_path / "out.jsonl", "--workers", "2"]
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args), "--chunk-size", "10"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "worker process died" not in done.stderr and "is writing" not in done.stderr
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 100
