"""Helpers of the server tests: reward functions for `python` sources, and a live uvicorn on
loopback in a thread (port 0) driven by httpx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def huge(sample: rh.Sample) -> Any:
    """1e308 (the weighted total of two overflows to inf); 'na' is not applicable."""
    if sample.completion == "na":
        return rh.NotApplicable("not for this sample")
    if sample.completion == "failed: smuggled":  # a reason-like completion changes nothing
        return rh.Abstain("failed: smuggled")
    return 1e308
