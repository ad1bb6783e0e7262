"""One sandbox process watched to its end: started, its output read under the caps, the wall
clock and the caller's stop enforced, its exit turned into a :class:`RunResult`.

Used by :class:`rewardhub.sandbox.Sandbox` for bubblewrap and for plain (unsandboxed) runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from rewardhub._sandbox_types import Job, Limits, RunResult

__all__ = ["Pipe", "spawn_and_wait"]

_TAIL = 2048


@dataclass
class _Stream:
    """Keeps the first ``cap`` bytes and the last ``_TAIL`` bytes of a stream."""

    cap: int
    buf: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def add(self, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > _TAIL:
                self.dropped += len(self.tail) - _TAIL
                del self.tail[:-_TAIL]

    def text(self) -> str:
        head = self.buf.decode("utf-8", errors="replace")
        if not self.tail:
            return head
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.dropped:
            return (self.buf + self.tail).decode("utf-8", errors="replace")
        return f"{head}\n[... {self.dropped} bytes dropped ...]\n{tail}"


@dataclass(frozen=True)
class Pipe:
    """A pipe the program writes to besides stdout and stderr (bwrap's ``--json-status-fd``,
    the report): our read end, the write end the program gets (closed here once it has
    started), and how many bytes are kept."""

    read: int | None = None
    write: int | None = None
    cap: int = 1 << 16


@dataclass
class _Streams:
    out: _Stream
    err: _Stream
    status: _Stream
    report: _Stream
    total: int = 0
    """bytes of stdout + stderr so far"""


def spawn_and_wait(
    cmd: list[str],
    job: Job,
    *,
    sandboxed: bool,
    pass_fds: list[int],
    cwd: str | None,
    env: dict[str, str] | None,
    status: Pipe,
    report: Pipe,
    **popen_kw: object,
) -> RunResult:
    """Start ``cmd``, collect its output under the caps, enforce the wall clock.

    bwrap reports ``child-pid`` on ``status`` once the sandbox is set up, which tells a
    sandbox that failed to start from a program that failed (no status pipe: a plain run).
    """
    lim = job.limits
    start = time.monotonic()
    deadline = start + lim.wall_s
    proc = _start(cmd, job, pass_fds, cwd, env, (status, report), popen_kw)
    if isinstance(proc, RunResult):
        return proc
    streams = _Streams(
        _Stream(lim.output_bytes), _Stream(lim.output_bytes), _Stream(status.cap),
        _Stream(report.cap),
    )  # fmt: skip
    _feed(proc, job.stdin)
    killed = _pump(proc, job, streams, (status.read, report.read), deadline)
    if killed is None:
        killed = _await_exit(proc, job.stop_fd, deadline)
    if killed is not None:
        _kill_group(proc)
    proc.wait()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    return _result(proc, killed, streams, time.monotonic() - start, lim, sandboxed, status)


def _start(
    cmd: list[str],
    job: Job,
    pass_fds: list[int],
    cwd: str | None,
    env: dict[str, str] | None,
    pipes: tuple[Pipe, Pipe],
    popen_kw: dict[str, object],
) -> subprocess.Popen[bytes] | RunResult:
    """The started process, or the result of a start that failed. Our copies of the write
    ends and the handed-over descriptors are closed either way."""
    try:
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if job.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
            **popen_kw,  # type: ignore[call-overload]
        )
        return proc
    except OSError as exc:
        return RunResult(None, "", "", error=f"sandbox failed to start: {exc}")
    finally:  # the caller closes the read ends
        for pipe in pipes:
            if pipe.write is not None:
                os.close(pipe.write)
        for fd in job.pass_fds:  # handed over: the program holds them now
            with contextlib.suppress(OSError):
                os.close(fd)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(data)  # small (a pipe buffer holds it): no deadlock
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()


def _pump(
    proc: subprocess.Popen[bytes],
    job: Job,
    streams: _Streams,
    extra: tuple[int | None, int | None],
    deadline: float,
) -> str | None:
    """Read every output until all are closed; the limit that stopped it early, if one did:
    ``wall``, ``output`` (stdout + stderr past ``output_kill_bytes``) or ``stopped``."""
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, streams.out)
        sel.register(proc.stderr, selectors.EVENT_READ, streams.err)
        for fd, buf in zip(extra, (streams.status, streams.report)):
            if fd is not None:
                sel.register(fd, selectors.EVENT_READ, buf)
        if job.stop_fd is not None:
            sel.register(job.stop_fd, selectors.EVENT_READ, None)
        while len(sel.get_map()) > (job.stop_fd is not None):
            left = deadline - time.monotonic()
            if left <= 0:
                return "wall"
            for key, _ in sel.select(left):
                if key.data is None:  # stop_fd
                    return "stopped"
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.add(chunk)
                if key.data is streams.out or key.data is streams.err:
                    streams.total += len(chunk)
                    if streams.total > job.limits.output_kill_bytes:
                        return "output"
    return None


def _await_exit(proc: subprocess.Popen[bytes], stop_fd: int | None, deadline: float) -> str | None:
    """Its output is closed: wait for the end; ``wall`` or ``stopped`` if that comes first."""
    while True:
        step = max(deadline - time.monotonic(), 0.0)
        try:
            proc.wait(step if stop_fd is None else min(step, 0.02))
            return None
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return "wall"
            if stop_fd is not None and select.select([stop_fd], [], [], 0)[0]:
                return "stopped"


def _result(
    proc: subprocess.Popen[bytes],
    killed: str | None,
    streams: _Streams,
    duration: float,
    lim: Limits,
    sandboxed: bool,
    status: Pipe,
) -> RunResult:
    code: int | None = proc.returncode
    sig: int | None = None
    if code is not None and code < 0:  # a plain subprocess killed by a signal
        sig, code = -code, 128 - code
    elif code is not None and code > 128 and sandboxed:  # bwrap: 128 + signal
        sig = code - 128
    if killed is None and sig in (signal.SIGXCPU, signal.SIGKILL) and _cpu_bound(duration, lim):
        killed = "cpu"
    if killed in ("wall", "output", "stopped"):
        code, sig = None, None
    error = None
    if status.read is not None and killed is None and b"child-pid" not in streams.status.buf:
        detail = streams.err.text().strip().splitlines()[-1:] or [f"exit status {code}"]
        error = f"sandbox failed to start: {detail[0]}"
    return RunResult(
        exit_code=code,
        stdout=streams.out.text(),
        stderr=streams.err.text(),
        timed_out=killed == "wall",
        killed_by_limit=killed,
        signal=sig,
        stdout_truncated=streams.out.truncated,
        stderr_truncated=streams.err.truncated,
        duration_s=duration,
        sandboxed=sandboxed,
        report=streams.report.text(),
        error=error,
    )


def _cpu_bound(duration: float, lim: Limits) -> bool:
    """A SIGXCPU/SIGKILL after at least the CPU budget in wall time: the CPU limit hit."""
    return duration >= lim.cpu_s * 0.9


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the sandbox's process group (bwrap's PID namespace takes everything with it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
