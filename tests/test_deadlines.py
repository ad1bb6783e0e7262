"""Deadlines that hold and crash isolation (issue #10): time-outs stop work, nothing that a
time-out abandoned blocks exit, one bad sample or crashing engine loses only itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
    assert "timeout after 0.5s" in json.dumps(line["errors"]), (line, proc.stderr)
