"""Deadlines that hold and crash isolation (issue #10): time-outs stop work, nothing that a
time-out abandoned blocks exit, one bad sample or crashing engine loses only itself."""

from __future__ import annotations

import inspect
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

import rewardhub as rh
from rewardhub.testing import plugin_with

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _rewardhub() -> list[str]:
    return [sys.executable, "-c", "from rewardhub.cli import main; main()"]


def test_cli_exits_promptly_after_a_timeout_of_a_hung_call(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(
        "import time\n\ndef score(sample):\n    time.sleep(60)\n    return 1.0\n"
    )
    (tmp_path / "spec.yaml").write_text(
        textwrap.dedent(
            """
            sources:
              - type: python
                timeout_s: 0.5
                config: {function: hang.py:score}
            """
        )
    )
    (tmp_path / "in.jsonl").write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    start = time.monotonic()
    proc = subprocess.run(
        [*_rewardhub(), "score", "spec.yaml", "in.jsonl", "-o", "out.jsonl"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=50,
    )
    took = time.monotonic() - start
    assert took < 15, f"took {took:.1f}s to exit"
    line = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert "timeout after 0.5s" in json.dumps(line["reasons"]), (line, proc.stderr)


# -- one bad sample loses only itself -----------------------------------------------------


def _odd(sample: rh.Sample) -> object:
    c = sample.completion
    if c == "raise":
        raise ZeroDivisionError("division by zero")
    if c == "exit":
        sys.exit(3)
    if c == "abstain-now":
        raise rh.AbstainNow("judge away")
    if c == "fail-now":
        raise rh.FailNow("unparsable")
    return {
        "inf": math.inf,
        "big": 10**400,
        "str": "5",
        "bytes": b"12",
        "dict": {"a": 1.0},
        "long": [1.0, 2.0],
        "nan": math.nan,
        "ok": 1.0,
        "np": np.float32(0.5),
    }[c]


ODD = ["inf", "big", "raise", "exit", "str", "bytes", "dict", "long", "abstain-now"]


def _check_isolated(res: rh.ScoreResult, source: str) -> None:
    values = res.vector.values[:, 0]
    errors = res.vector.reasons
    n = len(ODD)
    assert np.isnan(values[:n]).all()
    assert values[n:].tolist()[:1] == [1.0] and values[-1] == 0.5
    assert errors[n] == {} and errors[-1] == {}
    reasons = [errors[i][source] for i in range(n)]
    assert "finite" in reasons[0] and "too large" in reasons[1]
    assert reasons[2] == "error: ZeroDivisionError: division by zero"
    assert "SystemExit" in reasons[3]
    assert all(r.startswith("wrong output") for r in reasons[4:8]), reasons
    assert reasons[8] == "judge away"


def _odd_samples() -> list[rh.Sample]:
    return [rh.Sample(prompt="p", completion=c) for c in [*ODD, "ok", "fail-now", "np"]]


def test_reward_source_isolates_each_sample() -> None:
    src = rh.reward_source("odd")(_odd)
    with rh.Pipeline.from_spec(
        {"sources": [{"type": "odd", "batch_size": 64}]}, hub=rh.Hub(plugins=[plugin_with(src)])
    ) as p:
        res = p.score(_odd_samples())
    _check_isolated(res, "odd")
    assert res.vector.reasons[len(ODD) + 1] == {"odd": "failed: unparsable"}
    assert res.vector.values[len(ODD) + 1, 0] == 0.0


def test_python_source_isolates_each_sample(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text(
        "import math, sys\nimport numpy as np\nimport rewardhub as rh\n\n"
        + textwrap.dedent(inspect.getsource(_odd))
    )
    spec = {"sources": [{"id": "py", "type": "python", "config": {"function": "odd.py:_odd"}}]}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    with rh.Pipeline.from_yaml(spec_file) as p:
        res = p.score(_odd_samples())
    _check_isolated(res, "py")


def test_a_malformed_chat_prompt_is_rejected_at_construction() -> None:
    with pytest.raises(rh.InputError, match=r"prompt\[0\] must be a chat message"):
        rh.Sample(prompt=["hello", 3], completion="x")  # type: ignore[list-item]
    with pytest.raises(rh.InputError, match=r"prompt\[1\]\.content must be a string, got int"):
        rh.Sample(
            prompt=[{"role": "user", "content": "a"}, {"role": "user", "content": 3}],
            completion="x",
        )
    with pytest.raises(rh.InputError, match=r"prompt\[0\]\.role must be a string, got nothing"):
        rh.Sample(prompt=[{"content": "a"}], completion="x")
    with pytest.raises(rh.InputError, match="line 4"):
        rh.Sample.from_dict(
            {"prompt": [{"role": "user", "content": None}], "completion": ""}, line=4
        )
    ok = rh.Sample(prompt=[{"role": "user", "content": "hi"}], completion="x")
    assert ok.prompt_text == "user: hi"


# -- python modules that exit or raise at import -------------------------------------------


def _python_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text("sources:\n  - type: python\n    config: {function: 'mod.py:score'}\n")
    return spec


def test_a_module_that_exits_at_import_is_a_spec_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("import sys\nsys.exit(7)\n")
    with pytest.raises(rh.SpecError, match=r"'mod\.py' failed: it called sys\.exit\(7\)"):
        rh.Pipeline.from_yaml(_python_spec(tmp_path))
    proc = subprocess.run(
        [*_rewardhub(), "validate", "spec.yaml"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode not in (0, 7)
    assert "sys.exit(7)" in proc.stdout + proc.stderr


def test_a_retry_after_fixing_a_module_sees_the_fix(tmp_path: Path) -> None:
    spec = _python_spec(tmp_path)
    (tmp_path / "mod.py").write_text("raise RuntimeError('half written')\n")
    before = set(sys.modules)
    with pytest.raises(rh.SpecError, match="raised RuntimeError: half written"):
        rh.Pipeline.from_yaml(spec)
    assert set(sys.modules) == before  # the failed import left nothing behind
    (tmp_path / "mod.py").write_text("def score(sample):\n    return 2.0\n")
    with rh.Pipeline.from_yaml(spec) as p:
        assert p.score([rh.Sample(prompt="p", completion="c")]).total[0] == 2.0
    (tmp_path / "mod.py").write_text("def score(sample):\n    return 3.0\n")
    with rh.Pipeline.from_yaml(spec) as p:  # an edited file is imported afresh
        assert p.score([rh.Sample(prompt="p", completion="c")]).total[0] == 3.0


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_stops_a_run_of_hanging_patterns_promptly(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(
        "sources:\n  - type: regex\n    config: {pattern: '(a|aa)+$'}\n"
    )
    # distinct lines (identical ones are scored once): ~200 CPU seconds of matching
    hostile = [json.dumps({"prompt": "p", "completion": "a" * 40 + f"b{i}"}) for i in range(200)]
    (tmp_path / "in.jsonl").write_text("\n".join(hostile) + "\n")
    proc = subprocess.Popen(
        [*_rewardhub(), "score", "spec.yaml", "in.jsonl", "-o", "out.jsonl"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # a test run started in the background has SIGINT ignored, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(4)  # started, and matching
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert took < 10, f"took {took:.1f}s to stop after Ctrl-C"


def test_daemon_thread_pool_runs_calls_and_never_joins_at_exit() -> None:
    import threading

    from rewardhub._threads import DaemonThreadPool

    pool = DaemonThreadPool(2, thread_name_prefix="t")
    assert list(pool.map(lambda x: x * 2, range(5))) == [0, 2, 4, 6, 8]
    names = pool.submit(lambda: threading.current_thread()).result()
    assert names.daemon
    gate = threading.Event()
    busy = [pool.submit(gate.wait) for _ in range(2)]
    deadline = time.monotonic() + 10
    while not all(f.running() for f in busy) and time.monotonic() < deadline:
        time.sleep(0.01)
    queued = pool.submit(lambda: 1)
    pool.shutdown(cancel_futures=True)
    assert queued.cancelled()
    gate.set()
    assert all(f.result(timeout=5) for f in busy)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: 1)
