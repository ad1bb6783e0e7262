"""OpenRLHF's own HTTP client against the server, and the SIGTERM drain with no secret in any
log line (the server in a subprocess, for the signal)."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest

import rewardhub as rh

from .server_support import live, serve_subprocess, spec

SECRET = "orl-path-secret-7f3a"
TOKEN = "bearer-secret-91c2"


def _openrlhf_executor() -> type:
    """``SingleTurnAgentExecutor`` from OpenRLHF 0.11 (installed with --no-deps by
    ``make``): only openrlhf/utils/agent.py is loaded, with its package's heavy imports
    (deepspeed, vllm) stubbed; the client code itself runs unchanged."""
    found = importlib.util.find_spec("openrlhf")
    if found is None or not found.submodule_search_locations:
        pytest.skip("openrlhf 0.11 is not installed (make installs it with --no-deps)")
    root = Path(next(iter(found.submodule_search_locations)))
    utils = types.ModuleType("openrlhf.utils")
    utils.__path__ = [str(root / "utils")]
    logging_utils = types.ModuleType("openrlhf.utils.logging_utils")
    logging_utils.init_logger = lambda name: __import__("logging").getLogger(name)  # type: ignore[attr-defined]
    saved = {
        k: sys.modules.get(k)
        for k in ("openrlhf", "openrlhf.utils", "openrlhf.utils.logging_utils")
    }
    sys.modules.update(
        {
            "openrlhf": types.ModuleType("openrlhf"),
            "openrlhf.utils": utils,
            "openrlhf.utils.logging_utils": logging_utils,
        }
    )
    try:
        loc = importlib.util.spec_from_file_location(
            "openrlhf.utils.agent", root / "utils" / "agent.py"
        )
        assert loc is not None and loc.loader is not None
        module = importlib.util.module_from_spec(loc)
        loc.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module.SingleTurnAgentExecutor  # type: ignore[no-any-return]


def test_openrlhf_client_with_and_without_the_secret_path() -> None:
    Executor = _openrlhf_executor()
    spec_ = spec("checked")
    with rh.Pipeline.from_spec(spec_) as pipe:
        with live(pipe, token=TOKEN, openrlhf_token=SECRET) as url:
            ex = Executor(remote_rm_url=f"{url}/openrlhf/{SECRET}")
            (info,) = asyncio.run(ex._fetch_rewards_via_http(["Q: 1+1? ok"], ["Q: 1+1?"], ["2"]))
            assert info["rewards"] == [1.0] and info["scores"] == [1.0]
            assert info["extra_logs"]["score"] == [1.0]
            assert info["extra_logs"]["abstained_score"] == [0.0]
            # without the secret (or with a wrong one) OpenRLHF's client gives up: it retries
            # 5 times a second apart, so the refusal is checked once, directly
            for path in ("/openrlhf", "/openrlhf/wrong"):
                r = httpx.post(url + path, json={"query": ["a"], "prompts": ["a"], "labels": [""]})
                assert r.status_code == 401 and SECRET not in r.text
        with live(pipe) as url:  # an open loopback server: the bare path works
            ex = Executor(remote_rm_url=f"{url}/openrlhf")
            (info,) = asyncio.run(ex._fetch_rewards_via_http(["Pcrash"], ["P"], [None]))
            assert info["rewards"] == [0.0]  # a failed check, never more


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {"REWARDHUB_TOKEN": TOKEN, "REWARDHUB_OPENRLHF_TOKEN": SECRET}
    args = ("--window-ms", "0", "--drain-timeout", "20")
    return serve_subprocess(tmp_path, spec("slow", seconds=1.5), env, *args)


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests_and_no_secret_is_logged(tmp_path: Path) -> None:
    proc, url, lines = _start(tmp_path)
    try:
        results: list[httpx.Response] = []

        def call(path: str, **kw: object) -> None:
            results.append(httpx.post(url + path, timeout=30, **kw))  # type: ignore[arg-type]

        body = {"query": ["Pxyz"], "prompts": ["P"], "labels": [None]}
        inflight = [
            threading.Thread(target=call, args=(f"/openrlhf/{SECRET}",), kwargs={"json": body}),
            threading.Thread(
                target=call,
                args=("/v1/score",),
                kwargs={
                    "json": {"samples": [{"completion": "ab"}]},
                    "headers": {"authorization": f"Bearer {TOKEN}"},
                },
            ),
        ]
        for t in inflight:
            t.start()
        time.sleep(0.5)  # both are being scored (1.5 s each)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        late = httpx.post(
            url + "/v1/score",
            json={"samples": [{"completion": "x"}]},
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert late.status_code == 503
        assert httpx.get(url + "/readyz", timeout=10).status_code == 503
        for t in inflight:
            t.join(timeout=30)
        assert sorted(r.status_code for r in results) == [200, 200]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        time.sleep(0.2)  # the reader thread reaches the end of the output
        assert proc.stdout is not None
        proc.stdout.close()
    log = "".join(lines)
    assert "POST /openrlhf " in log  # the access log has the request, without its secret
    assert SECRET not in log and TOKEN not in log
    assert "Traceback" not in log
    for r in [*results, late]:
        assert SECRET not in r.text and TOKEN not in r.text
