"""The data of one sandbox run: its :class:`Limits`, what it was asked (:class:`Job`) and what
happened (:class:`RunResult`). Re-exported by :mod:`rewardhub.sandbox`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Job", "Limits", "RunResult"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run."""

    wall_s: float = 10.0
    """wall-clock seconds, sandbox start included; then the whole sandbox is killed"""
    cpu_s: int = 10
    """CPU seconds per process (RLIMIT_CPU: SIGXCPU, then SIGKILL one second later)"""
    memory_mb: int = 1024
    """address space per process (RLIMIT_AS); allocations beyond it fail (MemoryError)"""
    processes: int = 64
    """processes and threads of the sandbox user (RLIMIT_NPROC); fork fails beyond it"""
    file_size_mb: int = 16
    """largest file the program may write (RLIMIT_FSIZE)"""
    open_files: int = 256
    """open file descriptors per process (RLIMIT_NOFILE)"""
    tmpfs_mb: int = 64
    """size of the private /tmp"""
    output_bytes: int = 64 * 1024
    """bytes of stdout and of stderr kept; the rest is dropped (``*_truncated``)"""
    output_kill_bytes: int = 8 * _MB
    """total bytes written to stdout + stderr after which the sandbox is killed"""
    files: int = 4096
    """files and directories the private /tmp may hold (its inodes; bubblewrap only)"""


@dataclass(frozen=True)
class RunResult:
    """What happened to one program."""

    exit_code: int | None
    """exit status; None when the sandbox killed it (timeout or output limit)"""
    stdout: str
    stderr: str
    timed_out: bool = False
    """the wall-clock limit was reached (``killed_by_limit == "wall"``)"""
    killed_by_limit: str | None = None
    """"wall", "cpu" or "output" when a limit killed the program, "stopped" when the caller's
    ``stop_fd`` did, else None"""
    signal: int | None = None
    """the signal that ended the program, when one did (exit status 128 + n in bwrap)"""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    sandboxed: bool = True
    report: str = ""
    """what the program wrote to its report descriptor (``run(report=True)``)"""
    error: str | None = None
    """set when the sandbox itself failed (not the program): the result says nothing"""

    @property
    def ok(self) -> bool:
        """The program ran to the end and exited with status 0."""
        return self.exit_code == 0 and self.killed_by_limit is None and self.error is None


@dataclass(frozen=True)
class Job:
    """One program to run, as :meth:`Sandbox.run` was asked."""

    argv: list[str]
    files: dict[str, str | bytes]
    limits: Limits
    stdin: bytes
    report: bool
    pass_fds: tuple[int, ...] = ()
    stop_fd: int | None = None
