"""A thread pool whose threads never block interpreter exit.

:class:`concurrent.futures.ThreadPoolExecutor` joins its threads at exit (it registers an
atexit hook), so one call that a time-out abandoned (a hung model call, a sleep, a wait on a
socket) keeps the process alive until it returns. The engine gives up on such calls at their
deadline; this pool's daemon threads let the process exit without them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["DaemonThreadPool"]

_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(Executor):
    """Up to ``max_workers`` daemon threads, started on demand, running submitted calls."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "rewardhub") -> None:
        self._max = max(1, max_workers)
        self._prefix = thread_name_prefix
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._started = 0
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._jobs.put((fut, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and self._started < self._max:
                self._started += 1
                threading.Thread(
                    target=_work,
                    args=(self._jobs, self._idle),
                    name=f"{self._prefix}_{self._started}",
                    daemon=True,
                ).start()
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once they finish their current call (``wait`` is not supported:
        a call abandoned at its deadline may never return)."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is not None:
                        job[0].cancel()
            for _ in range(self._started):
                self._jobs.put(None)


def _work(jobs: queue.SimpleQueue[_Job | None], idle: threading.Semaphore) -> None:
    while (job := jobs.get()) is not None:
        fut, fn, args, kwargs = job
        del job
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)
        del fut, fn, args, kwargs  # drop references before waiting for the next job
        idle.release()
