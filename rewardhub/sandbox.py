"""Run an untrusted program inside a bubblewrap sandbox, with resource limits.

One job: :meth:`Sandbox.run` starts a program in a fresh sandbox and returns its exit
status, its (truncated) stdout and stderr, and whether a limit stopped it.

The sandbox (``bwrap``) has no network (a private network namespace with only loopback),
private PID, IPC, UTS, cgroup, mount and user namespaces, a read-only view of ``/usr`` (plus the
interpreter's prefix and any extra read-only paths), an unprivileged uid/gid 65534, new user
namespaces disabled, and it dies with the calling thread. bwrap itself starts with an empty
environment, so no host secret is visible anywhere inside, and the program is pid 1 of its PID
namespace (``--as-pid-1``): there is no bwrap init beside it without rlimits that it could
``ptrace`` or write through ``/proc/1/mem``. A seccomp filter (:mod:`rewardhub._sandbox_setup`)
denies ``ptrace`` and the other calls that reach into another process.

Inside, a setup step mounts a private ``/tmp`` bounded in bytes and inodes (``tmpfs_mb``,
``files``) whose ``/tmp/work`` is the working directory, copies the files there, and drops its
capabilities; then ``prlimit`` sets the resource limits (CPU seconds, address space,
processes, file size, open files) and execs the program, so every process in the sandbox is
limited. The whole sandbox is killed on the wall-clock timeout, when the program prints more
than ``Limits.output_kill_bytes``, or when the caller's ``stop_fd`` says so.

When the host runs as root, ``bwrap`` itself is started as uid 65534: a process limit is not
enforced for processes the kernel sees as root, so this is what makes ``Limits.processes``
(the fork-bomb guard) hold.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rewardhub._sandbox_setup import ARCH, STAGING, seccomp_filter, setup_argv
from rewardhub.errors import SourceError

__all__ = [
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxUnavailable",
    "bwrap_path",
    "default_python",
]

NOBODY = 65534
WORKDIR = "/tmp/work"
_MB = 1024 * 1024


class SandboxUnavailable(SourceError):
    """bubblewrap is missing or cannot create a sandbox on this machine."""


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


def bwrap_path() -> str | None:
    """The bubblewrap binary, or None when it is not installed."""
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


def _world_readable(path: Path) -> bool:
    """True when every directory on the way to ``path`` is searchable by others."""
    for p in [*reversed(path.parents), path]:
        try:
            mode = p.stat().st_mode
        except OSError:
            return False
        if p.is_dir() and not mode & 0o001:
            return False
    return True


def default_python() -> str:
    """The interpreter that runs untrusted Python: this one when the sandbox user can
    read it, else the system's ``python3`` under /usr."""
    here = Path(sys.executable).resolve()
    if os.geteuid() != 0 or _world_readable(here.parent.parent):
        return str(here)
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    return str(here)


def _prefix_of(python: str) -> Path:
    """The installation prefix of an interpreter (``.../bin/python3`` → ``...``)."""
    exe = Path(python).resolve()
    return exe.parent.parent if exe.parent.name == "bin" else exe.parent


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


class Sandbox:
    """Runs programs in bubblewrap sandboxes (or, only when asked, without one).

    ``python`` is the interpreter :meth:`run_python` uses (default: :func:`default_python`);
    ``ro_paths`` are extra host paths made visible read-only at the same place; ``bwrap`` is
    the bubblewrap binary (default: the one on PATH; ``""`` means none).
    ``allow_unsandboxed=True`` runs programs as plain subprocesses (still with rlimits, a
    private working directory and the timeout) when bubblewrap is missing: only for code you
    trust.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        python: str | None = None,
        ro_paths: Sequence[str] = (),
        allow_unsandboxed: bool = False,
        bwrap: str | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.python = python or default_python()
        self.ro_paths = tuple(ro_paths)
        self.allow_unsandboxed = allow_unsandboxed
        self.bwrap = (bwrap if bwrap is not None else bwrap_path()) or None
        self.prlimit = shutil.which("prlimit", path="/usr/bin:/bin:/usr/sbin:/sbin")
        self.setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
        self.perl = shutil.which("perl", path="/usr/bin:/bin")
        if self.bwrap is None and not allow_unsandboxed:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed, so untrusted code cannot be sandboxed. "
                "Install it (Debian/Ubuntu: apt-get install bubblewrap; `make sandbox` does "
                "it) or, only for code you trust, set allow_unsandboxed: true"
            )
        if not os.access(self.python, os.X_OK):
            raise SourceError(f"python interpreter {self.python!r} is not executable")
        if self.sandboxed and os.geteuid() == 0:
            prefix = _prefix_of(self.python)
            if not _world_readable(prefix):
                raise SourceError(
                    f"the sandbox user (uid {NOBODY}) cannot read the interpreter under "
                    f"{prefix}; set `python` to one under /usr, e.g. /usr/bin/python3"
                )

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    # -- public ------------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        files: Mapping[str, str | bytes] | None = None,
        *,
        limits: Limits | None = None,
        stdin: bytes = b"",
        report: bool = False,
        pass_fds: Sequence[int] = (),
        stop_fd: int | None = None,
    ) -> RunResult:
        """Run ``argv`` with ``files`` (names relative to the working directory) in place.

        ``stdin`` is what the program reads on its standard input (then end of file). With
        ``report=True`` the environment variable ``REWARDHUB_REPORT_FD`` names a descriptor
        whose contents come back in ``RunResult.report`` (a channel apart from stdout).
        ``pass_fds`` are descriptors (pipe ends) the program gets under the same numbers;
        they are handed over: this call closes them once the program has started. When
        ``stop_fd`` (owned by the caller) becomes readable, the sandbox is killed
        (``killed_by_limit == "stopped"``): another thread's way to end a run early.
        """
        lim = limits or self.limits
        files = dict(files or {})
        for name in files:
            if name.startswith("/") or ".." in Path(name).parts or not name:
                raise ValueError(f"file name {name!r} must be relative, without '..'")
        job = _Job(list(argv), files, lim, stdin, report, tuple(pass_fds), stop_fd)
        if self.sandboxed:
            return self._run_bwrap(job)
        return self._run_plain(job)

    def run_python(
        self,
        source: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        limits: Limits | None = None,
        stdin: bytes = b"",
        report: bool = False,
        pass_fds: Sequence[int] = (),
        stop_fd: int | None = None,
    ) -> RunResult:
        """Run Python ``source`` as ``main.py`` (``files`` are put beside it)."""
        return self.run(
            [self.python, "-s", "-B", "main.py"],
            {**(files or {}), "main.py": source},
            limits=limits,
            stdin=stdin,
            report=report,
            pass_fds=pass_fds,
            stop_fd=stop_fd,
        )

    # -- internals ---------------------------------------------------------------------------

    def _rlimit_argv(self, lim: Limits) -> list[str]:
        """Set the limits and exec the program: ``prlimit``, or a Python shim without it."""
        cpu, cpu_hard = lim.cpu_s, lim.cpu_s + 1
        mem = lim.memory_mb * _MB
        fsize = lim.file_size_mb * _MB
        if self.prlimit:
            return [
                self.prlimit,
                f"--cpu={cpu}:{cpu_hard}",
                f"--as={mem}",
                f"--nproc={lim.processes}",
                f"--fsize={fsize}",
                f"--nofile={lim.open_files}",
                "--core=0",
                "--",
            ]
        shim = (
            "import os,resource as r,sys\n"
            f"for k,v in ((r.RLIMIT_CPU,({cpu},{cpu_hard})),(r.RLIMIT_AS,({mem},{mem})),"
            f"(r.RLIMIT_NPROC,({lim.processes},{lim.processes})),(r.RLIMIT_FSIZE,({fsize},{fsize})),"
            f"(r.RLIMIT_NOFILE,({lim.open_files},{lim.open_files})),(r.RLIMIT_CORE,(0,0))):"
            " r.setrlimit(k,v)\n"
            "os.execvp(sys.argv[1],sys.argv[1:])"
        )
        return [self.python, "-I", "-S", "-c", shim]

    def _bwrap_argv(
        self,
        lim: Limits,
        fds: list[tuple[int, str]],
        status_fd: int,
        report_fd: int | None,
        seccomp_fd: int | None,
    ) -> list[str]:
        assert self.bwrap is not None
        args = [
            self.bwrap,
            "--json-status-fd", str(status_fd),
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",  # no unlimited bwrap init beside the program (see the module doc)
            "--uid", str(NOBODY),
            "--gid", str(NOBODY),
            "--hostname", "sandbox",
            "--clearenv",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "HOME", WORKDIR,
            "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONUTF8", "1",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        if report_fd is not None:
            args += ["--setenv", "REWARDHUB_REPORT_FD", str(report_fd)]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = Path("/") / top
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                args += ["--ro-bind", str(p), str(p)]
        extra = [_prefix_of(self.python), *(Path(p) for p in self.ro_paths)]
        for p in extra:
            rp = p.resolve()
            if rp.exists() and not (rp == Path("/usr") or Path("/usr") in rp.parents):
                args += ["--ro-bind", str(rp), str(rp)]
        args += [
            "--proc", "/proc",
            "--tmpfs", "/dev",
            "--dev-bind", "/dev/null", "/dev/null",
            "--dev-bind", "/dev/zero", "/dev/zero",
            "--dev-bind", "/dev/random", "/dev/random",
            "--dev-bind", "/dev/urandom", "/dev/urandom",
            "--symlink", "/proc/self/fd", "/dev/fd",
            "--remount-ro", "/dev",
        ]  # fmt: skip
        if ARCH is None:  # no setup step: bwrap's /tmp, bounded in bytes only
            args += ["--size", str(lim.tmpfs_mb * _MB), "--tmpfs", "/tmp", "--dir", WORKDIR]
        else:  # the setup step mounts it
            args += ["--dir", "/tmp"]
        for fd, name in fds:
            where = WORKDIR if ARCH is None else STAGING
            args += ["--ro-bind-data", str(fd), f"{where}/{name}"]
        args += ["--remount-ro", "/", "--chdir", WORKDIR if ARCH is None else "/"]
        if ARCH is not None:  # only the setup step has it: it clears it before the program
            args += ["--cap-add", "CAP_SYS_ADMIN"]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        return args

    def _run_bwrap(self, job: _Job) -> RunResult:
        fds: list[tuple[int, str]] = []
        status_r, status_w = os.pipe()
        report_r, report_w = os.pipe() if job.report else (None, None)
        handed = False
        seccomp_fd: int | None = None
        try:
            for name, content in job.files.items():
                data = (
                    content.encode("utf-8", "surrogateescape")
                    if isinstance(content, str)
                    else content
                )
                fds.append((_memfd(data), name))
            setup: list[str] = []
            if ARCH is not None:
                seccomp_fd = _memfd(seccomp_filter(ARCH))
                lim = job.limits
                setup = setup_argv(ARCH, self.perl, self.python, lim.tmpfs_mb * _MB, lim.files)
            cmd = [
                *self._bwrap_argv(job.limits, fds, status_w, report_w, seccomp_fd),
                *setup,
                *self._rlimit_argv(job.limits),
                *job.argv,
            ]
            drop: dict[str, object] = {}
            if os.geteuid() == 0:  # start bwrap as nobody (see the module docstring)
                if self.setpriv:  # an exec'd helper keeps vfork: faster than Popen(user=)
                    cmd = [self.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", "--", *cmd]  # fmt: skip
                else:
                    drop = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
            inherit = [status_w, *(fd for fd, _ in fds), *job.pass_fds]
            if report_w is not None:
                inherit.append(report_w)
            if seccomp_fd is not None:
                inherit.append(seccomp_fd)
            handed = True  # from here _spawn_and_wait closes the write ends
            # env={}: bwrap's own environment is visible in /proc inside; no host secret in it
            return self._spawn_and_wait(
                cmd, job, pass_fds=inherit, cwd=None, env={},
                pipes=[(status_r, status_w, 1 << 16), (report_r, report_w, 1 << 16)], **drop,
            )  # fmt: skip
        finally:
            ends: tuple[int | None, ...] = (status_r, report_r)
            if not handed:
                ends += (status_w, report_w)
                ends += job.pass_fds
            for fd in (*ends, *(fd for fd, _ in fds), seccomp_fd):
                if fd is not None:
                    os.close(fd)

    def _run_plain(self, job: _Job) -> RunResult:
        report_r, report_w = os.pipe() if job.report else (None, None)
        handed = False
        try:
            with tempfile.TemporaryDirectory(prefix="rewardhub-unsandboxed-") as work:
                for name, content in job.files.items():
                    path = Path(work) / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(content, str):
                        path.write_text(content, encoding="utf-8", errors="surrogateescape")
                    else:
                        path.write_bytes(content)
                env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8",
                       "PYTHONUTF8": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
                if report_w is not None:
                    env["REWARDHUB_REPORT_FD"] = str(report_w)
                handed = True
                return self._spawn_and_wait(
                    [*self._rlimit_argv(job.limits), *job.argv], job,
                    pass_fds=[*job.pass_fds, *([] if report_w is None else [report_w])],
                    cwd=work, env=env,
                    pipes=[(None, None, 0), (report_r, report_w, 1 << 16)],
                )  # fmt: skip
        finally:
            ends = (report_r,) if handed else (report_r, report_w, *job.pass_fds)
            for fd in ends:
                if fd is not None:
                    os.close(fd)

    def _spawn_and_wait(
        self,
        cmd: list[str],
        job: _Job,
        *,
        pass_fds: list[int],
        cwd: str | None,
        env: dict[str, str] | None,
        pipes: list[tuple[int | None, int | None, int]],
        **popen_kw: object,
    ) -> RunResult:
        """Start ``cmd``, collect its output under the caps, enforce the wall clock.

        ``pipes`` are (read end, write end, cap) of bwrap's ``--json-status-fd`` pipe and of the
        report pipe (None when unused). bwrap reports ``child-pid`` once the sandbox is set
        up, which tells a sandbox that failed to start from a program that failed.
        """
        lim = job.limits
        start = time.monotonic()
        deadline = start + lim.wall_s
        (status_r, status_w, _), (report_r, report_w, report_cap) = pipes
        try:
            proc = subprocess.Popen(
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
        except OSError as exc:
            return RunResult(None, "", "", error=f"sandbox failed to start: {exc}")
        finally:  # our copies of the write ends (the caller closes the read ends)
            for fd in (status_w, report_w):
                if fd is not None:
                    os.close(fd)
            for fd in job.pass_fds:  # handed over: the program holds them now
                with contextlib.suppress(OSError):
                    os.close(fd)
        status_buf, report_buf = _Stream(1 << 16), _Stream(report_cap)
        out, err = _Stream(lim.output_bytes), _Stream(lim.output_bytes)
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(job.stdin)  # small (a pipe buffer holds it): no deadlock
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        killed: str | None = None
        total = 0
        assert proc.stdout is not None and proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            for fd, buf in ((status_r, status_buf), (report_r, report_buf)):
                if fd is not None:
                    sel.register(fd, selectors.EVENT_READ, buf)
            if job.stop_fd is not None:
                sel.register(job.stop_fd, selectors.EVENT_READ, None)
            while len(sel.get_map()) > (job.stop_fd is not None) and killed is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    killed = "wall"
                    break
                for key, _ in sel.select(left):
                    if key.data is None:  # stop_fd
                        killed = "stopped"
                        break
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    key.data.add(chunk)
                    if key.data is out or key.data is err:
                        total += len(chunk)
                        if total > lim.output_kill_bytes:
                            killed = "output"
                            break
        while killed is None:  # its output is closed; wait for the end (or the stop)
            step = max(deadline - time.monotonic(), 0.0)
            try:
                proc.wait(step if job.stop_fd is None else min(step, 0.02))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    killed = "wall"
                elif job.stop_fd is not None and select.select([job.stop_fd], [], [], 0)[0]:
                    killed = "stopped"
        if killed is not None:
            _kill_group(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        duration = time.monotonic() - start
        code: int | None = proc.returncode
        sig: int | None = None
        if code is not None and code < 0:  # a plain subprocess killed by a signal
            sig, code = -code, 128 - code
        elif code is not None and code > 128 and self.sandboxed:  # bwrap: 128 + signal
            sig = code - 128
        if killed is None and sig in (signal.SIGXCPU, signal.SIGKILL) and _cpu_bound(duration, lim):
            killed = "cpu"
        if killed in ("wall", "output", "stopped"):
            code, sig = None, None
        error = None
        if status_r is not None and killed is None and b"child-pid" not in status_buf.buf:
            detail = err.text().strip().splitlines()[-1:] or [f"exit status {code}"]
            error = f"sandbox failed to start: {detail[0]}"
        return RunResult(
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=killed == "wall",
            killed_by_limit=killed,
            signal=sig,
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
            duration_s=duration,
            sandboxed=self.sandboxed,
            report=report_buf.text(),
            error=error,
        )


@dataclass(frozen=True)
class _Job:
    argv: list[str]
    files: dict[str, str | bytes]
    limits: Limits
    stdin: bytes
    report: bool
    pass_fds: tuple[int, ...] = ()
    stop_fd: int | None = None


def _memfd(data: bytes) -> int:
    """An anonymous file holding ``data``, positioned at its start (bwrap reads it)."""
    fd = os.memfd_create("rewardhub-sandbox-file")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _cpu_bound(duration: float, lim: Limits) -> bool:
    """A SIGXCPU/SIGKILL after at least the CPU budget in wall time: the CPU limit hit."""
    return duration >= lim.cpu_s * 0.9


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the sandbox's process group (bwrap's PID namespace takes everything with it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


_probe_lock = threading.Lock()
_probe_cache: dict[tuple[str | None, str], str | None] = {}


def probe(sandbox: Sandbox) -> str | None:
    """Start one trivial sandbox; None when it works, else why not (cached per setup)."""
    key = (sandbox.bwrap, sandbox.python)
    with _probe_lock:
        if key not in _probe_cache:
            res = sandbox.run([sandbox.python, "-I", "-S", "-c", "print('ok')"],
                              limits=Limits(wall_s=30.0))  # fmt: skip
            if res.error:
                _probe_cache[key] = res.error
            elif res.exit_code != 0 or res.stdout.strip() != "ok":
                detail = res.stderr.strip().splitlines()[-1:] or [f"exit status {res.exit_code}"]
                _probe_cache[key] = f"sandbox failed to start: {detail[0]}"
            else:
                _probe_cache[key] = None
        return _probe_cache[key]
