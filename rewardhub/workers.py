"""A pool of worker processes that speak JSON lines, with per-request deadlines.

Each worker is ``python -m <module>`` started with :class:`subprocess.Popen`: it never imports
the caller's ``__main__`` (multiprocessing's spawn and forkserver do, and hang when the caller
is a script without a ``__main__`` guard, ``python -`` or a notebook), and it is safe to start
from a threaded process (no ``fork`` of the caller's threads). A worker that misses its
deadline is killed and replaced; one that dies is replaced and the request retried once.

The protocol: the worker writes one JSON line ``{"ready": true}`` (or ``{"ready": false,
"error": ...}``) when it has imported what it needs, then answers each request line with one
response line. Use :func:`serve` to write a worker's main loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Failure", "WorkerPool", "WorkerStartError", "serve"]

_PKG_PARENT = str(Path(__file__).resolve().parent.parent)


class WorkerStartError(RuntimeError):
    """A worker process could not start (its error is the message)."""


@dataclass(frozen=True)
class Failure:
    """A request that got no answer: ``reason`` is "timeout" or why the worker died."""

    reason: str


class _Worker:
    def __init__(self, module: str, python: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_PARENT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [python, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.fd = self.proc.stdout.fileno()
        self.buf = bytearray()
        self.ready = False

    def read_line(self, deadline: float) -> bytes | None:
        """The next line, or None at the deadline; raises EOFError when the worker died."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            line = self.read_line(time.monotonic() + timeout)
        except EOFError:
            line = b""
        msg: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            msg = json.loads(line or b"{}")
        if not msg.get("ready"):
            self.stop()
            why = msg.get("error") or ("no answer" if line is None else "it exited")
            raise WorkerStartError(f"worker failed to start: {why}")
        self.ready = True

    def request(self, payload: dict[str, Any], deadline: float) -> dict[str, Any]:
        self.stdin.write(json.dumps(payload).encode() + b"\n")
        self.stdin.flush()
        line = self.read_line(deadline)
        if line is None:
            raise TimeoutError
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self, grace: float = 1.0) -> None:
        """Close stdin (the worker exits at EOF), then kill it if it does not."""
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.stop(grace=5.0)


def _stop_all(workers: list[_Worker]) -> None:
    for w in list(workers):
        w.stop()
    workers.clear()


class WorkerPool:
    """Up to ``size`` workers running ``python -m module``, started on first use.

    :meth:`map` sends each request to a free worker and returns its answer, or a
    :class:`Failure` when it timed out (the worker is killed and replaced) or its worker died
    twice. Safe to call from several threads at once; :meth:`close` stops the workers.
    """

    def __init__(
        self,
        module: str,
        size: int,
        *,
        python: str | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.module = module
        self.size = max(1, size)
        self.python = python or sys.executable
        self.start_timeout_s = start_timeout_s
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._closed = False
        self._broken: str | None = None
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    # -- public ------------------------------------------------------------------------------

    def map(
        self,
        requests: Sequence[dict[str, Any]],
        timeout_s: float,
        on_result: Callable[[int, dict[str, Any] | Failure], None] | None = None,
    ) -> list[dict[str, Any] | Failure]:
        """Answer every request (each under its own ``timeout_s`` deadline)."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        self._start_missing()
        if len(requests) == 1:
            return [self._one(requests[0], timeout_s)]
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self.size, thread_name_prefix="rewardhub-workers"
                )
            threads = self._threads
        return list(threads.map(lambda r: self._one(r, timeout_s), requests))

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return [w.proc.pid for w in self._all]

    def close(self) -> None:
        self._closed = True
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        self._finalizer()

    # -- internals ---------------------------------------------------------------------------

    def _start_missing(self) -> None:
        """Start workers up to ``size`` (they import in parallel, readiness checked on use)."""
        with self._lock:
            while len(self._all) < self.size:
                w = _Worker(self.module, self.python)
                self._all.append(w)
                self._idle.put(w)

    def _discard(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            if not self._closed:  # replace it
                new = _Worker(self.module, self.python)
                self._all.append(new)
                self._idle.put(new)

    def _one(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any] | Failure:
        last = "worker died"
        for _attempt in range(2):
            w = self._idle.get()
            if self._broken is not None:
                self._idle.put(w)
                return Failure(self._broken)
            try:
                w.wait_ready(self.start_timeout_s)
            except WorkerStartError as exc:  # e.g. a missing dependency: give up on the pool
                self._broken = str(exc)
                self._idle.put(w)  # stopped already; lets other waiting threads see _broken
                return Failure(self._broken)
            try:
                answer = w.request(request, time.monotonic() + timeout_s)
            except TimeoutError:
                self._discard(w)
                return Failure("timeout")
            except (EOFError, OSError, ValueError) as exc:
                code = w.proc.poll()
                last = (
                    f"worker died (exit status {code})"
                    if code is not None
                    else f"worker error: {exc}"
                )
                self._discard(w)
                continue
            self._idle.put(w)
            return answer
        return Failure(last)


def serve(setup: Callable[[], Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """A worker's main loop: ``setup()`` returns the handler; one JSON line in, one out."""
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints of libraries must not corrupt the protocol
    try:
        handle = setup()
    except BaseException as exc:  # report why, then exit
        out.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        raise SystemExit(1) from None
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()
