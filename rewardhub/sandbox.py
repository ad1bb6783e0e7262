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

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from rewardhub._sandbox_process import Pipe, spawn_and_wait
from rewardhub._sandbox_setup import ARCH, STAGING, seccomp_filter, setup_argv
from rewardhub._sandbox_types import Job, Limits, RunResult
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
        job = Job(list(argv), files, lim, stdin, report, tuple(pass_fds), stop_fd)
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

    def _run_bwrap(self, job: Job) -> RunResult:
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
            handed = True  # from here spawn_and_wait closes the write ends
            # env={}: bwrap's own environment is visible in /proc inside; no host secret in it
            return spawn_and_wait(
                cmd, job, sandboxed=True, pass_fds=inherit, cwd=None, env={},
                status=Pipe(status_r, status_w), report=Pipe(report_r, report_w), **drop,
            )  # fmt: skip
        finally:
            ends: tuple[int | None, ...] = (status_r, report_r)
            if not handed:
                ends += (status_w, report_w)
                ends += job.pass_fds
            for fd in (*ends, *(fd for fd, _ in fds), seccomp_fd):
                if fd is not None:
                    os.close(fd)

    def _run_plain(self, job: Job) -> RunResult:
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
                return spawn_and_wait(
                    [*self._rlimit_argv(job.limits), *job.argv], job, sandboxed=False,
                    pass_fds=[*job.pass_fds, *([] if report_w is None else [report_w])],
                    cwd=work, env=env,
                    status=Pipe(), report=Pipe(report_r, report_w),
                )  # fmt: skip
        finally:
            ends = (report_r,) if handed else (report_r, report_w, *job.pass_fds)
            for fd in ends:
                if fd is not None:
                    os.close(fd)


def _memfd(data: bytes) -> int:
    """An anonymous file holding ``data``, positioned at its start (bwrap reads it)."""
    fd = os.memfd_create("rewardhub-sandbox-file")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


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
