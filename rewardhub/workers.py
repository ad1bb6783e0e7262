"""A pool of worker processes that speak JSON lines, with per-request deadlines.

Each worker is ``python -m <module>`` started with :class:`subprocess.Popen`: it never imports
the caller's ``__main__`` (multiprocessing's spawn and forkserver do, and hang when the caller
is a script without a ``__main__`` guard, ``python -`` or a notebook), and it is safe to start
from a threaded process (no ``fork`` of the caller's threads). A worker that misses its
deadline is killed and replaced; one that dies is replaced and the request retried once.

The protocol: with an ``init`` payload, the pool first writes it as one JSON line (what the
worker needs to load: policies, expressions); the worker writes one JSON line ``{"ready": true}``
(or ``{"ready": false, "error": ...}``) when it has imported what it needs, then answers each
request line with one response line. Use :func:`serve` to write a worker's main loop.

Workers ignore Ctrl-C (the caller decides what to stop) and exit when their parent is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rewardhub._threads import DaemonThreadPool

__all__ = [
    "NOT_STARTED",
    "TIMEOUT",
    "Failure",
    "WorkerPool",
    "WorkerStartError",
    "serve",
    "shared_pool",
]

_PKG_PARENT = str(Path(__file__).resolve().parent.parent)


class WorkerStartError(RuntimeError):
    """A worker process could not start (its error is the message)."""


#: :attr:`Failure.reason` of a request that ran past its time limit (the worker was killed)
TIMEOUT = "timeout"
#: :attr:`Failure.reason` of a request not sent: its deadline had passed before a worker was free
NOT_STARTED = "deadline passed before it started"
#: a request is not sent with less time than this left
_MIN_S = 0.01


@dataclass(frozen=True)
class Failure:
    """A request that got no answer: ``reason`` is :data:`TIMEOUT`, :data:`NOT_STARTED`, or
    why the worker died ("worker died (signal SIGSEGV)")."""

    reason: str


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


class _Worker:
    def __init__(self, module: str, python: str, init: bytes | None = None) -> None:
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
        if init is not None:  # read by the worker before it imports anything
            with contextlib.suppress(OSError):
                self.stdin.write(init)
                self.stdin.flush()

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
        init: dict[str, Any] | None = None,
    ) -> None:
        self.module = module
        self._init = None if init is None else json.dumps(init).encode() + b"\n"
        self.size = max(1, size)
        self.python = python or sys.executable
        self.start_timeout_s = start_timeout_s
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads: DaemonThreadPool | None = None
        self._closed = False
        self._broken: str | None = None
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    # -- public ------------------------------------------------------------------------------

    def map(
        self,
        requests: Sequence[dict[str, Any]],
        timeout_s: float,
        on_result: Callable[[int, dict[str, Any] | Failure], None] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[dict[str, Any] | Failure]:
        """Answer every request, each under its own ``timeout_s`` limit from when it is sent,
        and none past ``deadline`` (a ``time.monotonic()`` value, e.g. the batch's)."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        self._start_missing(len(requests))
        if len(requests) == 1:
            return [self._one(requests[0], timeout_s, deadline)]
        with self._lock:
            if self._threads is None:  # daemon threads: nothing here may block exit
                self._threads = DaemonThreadPool(self.size, thread_name_prefix="rewardhub-workers")
            threads = self._threads
        return list(threads.map(lambda r: self._one(r, timeout_s, deadline), requests))

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

    def _start_missing(self, wanted: int) -> None:
        """Start workers up to ``min(wanted, size)``: no more than the requests can use (they
        import in parallel, readiness checked on use)."""
        with self._lock:
            while len(self._all) < min(wanted, self.size):
                w = _Worker(self.module, self.python, self._init)
                self._all.append(w)
                self._idle.put(w)

    def _discard(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            if not self._closed:  # replace it
                new = _Worker(self.module, self.python, self._init)
                self._all.append(new)
                self._idle.put(new)

    def _one(
        self, request: dict[str, Any], timeout_s: float, deadline: float | None
    ) -> dict[str, Any] | Failure:
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
            end = time.monotonic() + timeout_s
            if deadline is not None and deadline < end:
                end = deadline
                if end - time.monotonic() < _MIN_S:
                    self._idle.put(w)
                    return Failure(NOT_STARTED)
            try:
                answer = w.request(request, end)
            except TimeoutError:
                self._discard(w)
                return Failure(TIMEOUT)
            except (EOFError, OSError, ValueError) as exc:
                try:  # a worker that closed its output is exiting: learn how
                    code: int | None = w.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    code = None
                last = (
                    f"worker died ({_exit_reason(code)})"
                    if code is not None
                    else f"worker error: {exc}"
                )
                self._discard(w)
                continue
            self._idle.put(w)
            return answer
        return Failure(last)


#: idle shared pools kept warm for the next identical source (see :func:`shared_pool`)
IDLE_POOLS_KEPT = 2
_shared_lock = threading.Lock()
_shared_live: dict[str, list[Any]] = {}  # key → [pool, users]
_shared_idle: dict[str, WorkerPool] = {}  # insertion order: oldest first


def shared_pool(
    module: str, size: int, init: dict[str, Any]
) -> tuple[WorkerPool, Callable[[bool], None]]:
    """A pool for ``(module, size, init)``, shared by every user asking for the same one, and
    the function that releases it (``release(keep=True)``).

    Starting a worker costs a Python start-up and the engine's import (half a second of CPU
    for CEL), so the last :data:`IDLE_POOLS_KEPT` pools that lost their last user stay warm
    for the next identical source (a pipeline built again, ``validate`` then ``score``);
    ``keep=False`` closes it instead. Idle pools exit with the process."""
    blob = json.dumps([module, size, init], sort_keys=True, default=str).encode()
    key = hashlib.sha256(blob).hexdigest()
    with _shared_lock:
        entry = _shared_live.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            pool = _shared_idle.pop(key, None)
            if pool is None or pool._closed:
                pool = WorkerPool(module, size, init=init)
            entry = _shared_live[key] = [pool, 1]
    released = False

    def release(keep: bool = True) -> None:
        nonlocal released
        to_close: list[WorkerPool] = []
        with _shared_lock:
            if released:
                return
            released = True
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _shared_live[key]
            if keep and not entry[0]._closed:
                _shared_idle[key] = entry[0]
                while len(_shared_idle) > IDLE_POOLS_KEPT:
                    to_close.append(_shared_idle.pop(next(iter(_shared_idle))))
            else:
                to_close.append(entry[0])
        for pool in to_close:
            pool.close()

    return entry[0], release


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def serve(setup: Callable[..., Handler], *, init: bool = False) -> None:
    """A worker's main loop: ``setup()`` (``setup(init_payload)`` with ``init``) returns the
    handler; one JSON line in, one out. A handler's error, even a ``BaseException`` such as
    pyo3's ``PanicException``, is answered as ``{"error": ...}``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    _die_with_parent()
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints of libraries must not corrupt the protocol
    try:
        handle = setup(json.loads(sys.stdin.readline())) if init else setup()
    except BaseException as exc:  # report why, then exit
        out.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        raise SystemExit(1) from None
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def _die_with_parent() -> None:
    """End this worker when its parent is gone (killed without closing our stdin), checked
    every second by a daemon thread. Best effort: a worker stuck in C holding the GIL waits
    for it to return."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="rewardhub-parent-watch", daemon=True).start()
