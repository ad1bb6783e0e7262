"""Helpers of the server tests: reward functions for `python` sources, and a live uvicorn on
loopback in a thread (port 0) driven by httpx."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

import rewardhub as rh
from rewardhub.server.app import create_app
from rewardhub.server.run import make_server
from rewardhub.server.settings import ServerSettings

HERE = Path(__file__).resolve().parent


def slow(sample: rh.Sample, seconds: float = 0.3) -> float:
    """Sleeps, then scores the completion's length (a source that takes time)."""
    time.sleep(seconds)
    return float(len(sample.completion))


def checked(sample: rh.Sample) -> Any:
    """'crash' fails its check, 'down' cannot be scored, else 1.0."""
    if sample.completion == "crash":
        return rh.Fail("the answer crashed the checker")
    if sample.completion == "down":
        return rh.Abstain("judge did not answer")
    return 1.0


def spec(function: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "sources": [
            {
                "id": "py",
                "type": "python",
                "config": {
                    "function": f"{HERE / 'server_support.py'}:{function}",
                    "objectives": ["score"],
                    "kwargs": kwargs,
                },
            }
        ]
    }


@contextmanager
def live(pipe: rh.Pipeline, **settings: Any) -> Iterator[str]:
    """Serve ``pipe`` on 127.0.0.1 at a free port; yields the base URL."""
    s = ServerSettings(port=0, **settings)
    app = create_app(pipe, s)
    server = make_server(app, s, log_level="warning")
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def metrics(url: str, **headers: str) -> dict[str, float]:
    """The server's /metrics as ``{"name|label=value...": value}``."""
    out: dict[str, float] = {}
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=30).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


def serve_subprocess(
    tmp_path: Path, pipeline_spec: dict[str, Any], env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], str, list[str]]:
    """``rewardhub serve`` in a subprocess on a free loopback port (its output, access log
    included, collected in the returned list); returns (process, base URL, lines)."""
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(pipeline_spec))
    full_env = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rewardhub"),
            "serve",
            str(spec_file),
            "--port",
            "0",
            *args,
        ],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            reader = threading.Thread(
                target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                daemon=True,
            )
            reader.start()
            return proc, m.group(1), lines
    proc.kill()
    raise AssertionError("the server did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the drain), then kill if it lingers; closes its output."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.2)  # the reader thread reaches the end of the output
    if proc.stdout is not None:
        proc.stdout.close()


def huge(sample: rh.Sample) -> Any:
    """1e308 (the weighted total of two overflows to inf); 'na' is not applicable."""
    if sample.completion == "na":
        return rh.NotApplicable("not for this sample")
    if sample.completion == "failed: smuggled":  # a reason-like completion changes nothing
        return rh.Abstain("failed: smuggled")
    return 1e308
