"""The bubblewrap sandbox: what a program inside can and cannot do, checked from the host.

Each attack runs as untrusted code (directly through ``Sandbox`` and, for a few, as a
``code-exec`` completion); afterwards the test checks the host: the files it guards are
unchanged, a loopback listener got no connection, this process is alive, and no sandbox
process is left over.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from rewardhub.sandbox import Limits, Sandbox, SandboxUnavailable, bwrap_path, probe

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

FAST = Limits(wall_s=5.0, cpu_s=3, output_bytes=4096, output_kill_bytes=1 << 20)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox(FAST)
    assert probe(sb) is None
    return sb


def _descendants() -> set[int]:
    """Live processes below this one, plus, when we are root, any run by the sandbox uid
    (65534) that is not inside another live sandbox (another test worker's, another user's):
    one that got out of its sandbox."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    nobody: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields["State"].split()[0] in ("Z", "X"):
            continue  # dead, waiting to be reaped: holds no resources
        parents[int(entry)] = int(fields["PPid"].strip())
        names[int(entry)] = fields["Name"].strip()
        if fields["Uid"].split()[0] == "65534" and os.geteuid() == 0:
            nobody.add(int(entry))
    me, found = os.getpid(), set()
    for pid in parents:
        p, seen, foreign = pid, 0, False
        while p > 1 and seen < 64:
            p, seen = parents.get(p, 0), seen + 1
            if p == me:
                found.add(pid)
                break
            foreign |= names.get(p) == "bwrap"
        else:
            if pid in nobody and not foreign and names.get(pid) != "bwrap":
                found.add(pid)
    return found


def _settled(baseline: set[int], timeout: float = 5.0) -> set[int]:
    """Wait until no process beyond the baseline is left; return the leftovers."""
    end = time.monotonic() + timeout
    while True:
        extra = _descendants() - baseline
        if not extra or time.monotonic() > end:
            return extra
        time.sleep(0.05)


@pytest.fixture
def host(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A guarded host file, a loopback listener, and the process baseline."""
    guarded = tmp_path / "guarded.txt"
    guarded.write_text("host secret 5f1d\n")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    baseline = _descendants()
    state = {"file": guarded, "port": listener.getsockname()[1], "dir": tmp_path,
             "baseline": baseline}  # fmt: skip
    yield state
    # host checks after every attack
    assert guarded.read_text() == "host secret 5f1d\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guarded.txt"]
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected
    listener.close()
    assert _settled(baseline) == set(), "sandbox processes were left running"
    os.kill(os.getpid(), 0)  # this process is alive


def _contained(res) -> None:  # type: ignore[no-untyped-def]
    assert res.error is None, res.error
    assert res.duration_s < FAST.wall_s + 2.0


# -- the attacks ---------------------------------------------------------------------------


def test_network_connect_to_loopback_listener(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = f"""
import socket
for addr in [("127.0.0.1", {host["port"]}), ("10.0.0.1", 80), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(addr, timeout=1).close()
        print("CONNECTED", addr)
    except OSError as e:
        print("blocked", addr, type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("RESOLVED")
except OSError as e:
    print("no dns", type(e).__name__)
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert "CONNECTED" not in res.stdout and "RESOLVED" not in res.stdout, res.stdout
    assert res.stdout.count("blocked") == 3


def test_write_to_host_paths(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = f"""
import os
targets = [{str(host["file"])!r}, {str(host["dir"] / "new.txt")!r}, "/usr/pwned", "/pwned",
           "/etc/pwned", "/proc/sys/kernel/hostname", "/dev/pwned", {__file__!r}]
for t in targets:
    try:
        with open(t, "w") as f:
            f.write("pwned")
        print("WROTE", t)
    except OSError as e:
        print("denied", t, type(e).__name__)
with open("/tmp/work/scratch.txt", "w") as f:  # its own tmpfs is writable
    f.write("ok")
print("scratch ok")
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert "WROTE" not in res.stdout, res.stdout
    assert "scratch ok" in res.stdout
    assert not Path("/usr/pwned").exists() and not Path("/pwned").exists()


def test_read_files_outside_the_allowed_set(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    repo = Path(__file__).resolve().parent.parent
    code = f"""
targets = [{str(host["file"])!r}, "/etc/passwd", "/etc/shadow", "/root/.bashrc",
           {str(repo / "pyproject.toml")!r}, "/proc/1/environ", "/home"]
for t in targets:
    try:
        with open(t) as f:
            data = f.read()
        print("READ", t, data[:40])
    except OSError as e:
        print("denied", t, type(e).__name__)
import os
print("root:", sorted(os.listdir("/")))
print("uid:", os.getuid(), os.getgid(), "env:", sorted(os.environ))
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert "host secret" not in res.stdout
    assert "READ" not in res.stdout.replace("READ /proc/1/environ", ""), res.stdout
    listing = "['.rewardhub-files', 'bin', 'dev', 'lib', 'lib64', 'proc', 'sbin', 'tmp', 'usr']"
    assert f"root: {listing}" in res.stdout
    assert "uid: 65534 65534" in res.stdout


@pytest.mark.slow
def test_fork_bomb(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    res = sandbox.run_python(code, limits=Limits(wall_s=3.0, cpu_s=2))
    _contained(res)
    assert res.exit_code != 0  # killed by the wall clock or the CPU limit


def test_daemon_that_outlives_the_program(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(1); os.close(2)
        time.sleep(60)
    os._exit(0)
print("parent exits")
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert res.exit_code == 0
    assert res.duration_s < 3  # the program's end ends the sandbox


def test_memory_hog(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
blocks = []
while True:
    blocks.append(bytearray(64 * 1024 * 1024))
"""
    res = sandbox.run_python(code, limits=Limits(wall_s=5.0, cpu_s=4, memory_mb=256))
    _contained(res)
    assert res.exit_code == 1 and "MemoryError" in res.stderr


@pytest.mark.slow
def test_infinite_loop(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    res = sandbox.run_python("while True:\n    pass\n")
    _contained(res)
    assert res.killed_by_limit in ("cpu", "wall") and res.exit_code != 0


def test_sleeping_forever_hits_the_wall_clock(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    res = sandbox.run_python("import time\ntime.sleep(600)\n", limits=Limits(wall_s=1.0))
    assert res.timed_out and res.killed_by_limit == "wall" and res.exit_code is None
    assert 1.0 <= res.duration_s < 3.0


def test_kill_parent_and_everything(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = f"""
import os, signal
for pid in (os.getppid(), 1, {os.getpid()}, {os.getppid()}, -1):
    try:
        os.kill(pid, signal.SIGKILL)
        print("sent", pid)
    except OSError as e:
        print("denied", pid, type(e).__name__)
"""
    res = sandbox.run_python(code)
    assert res.error is None
    # whatever it managed to signal lives inside its own PID namespace; we are alive
    os.kill(os.getpid(), 0)


def test_very_long_output_is_truncated_and_killed(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    res = sandbox.run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    _contained(res)
    assert res.killed_by_limit == "output" and res.stdout_truncated
    assert len(res.stdout) < FAST.output_bytes + 4096


def test_big_file_and_full_tmpfs(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
import os
try:
    with open("big", "wb") as f:
        for _ in range(1024):
            f.write(b"x" * (1024 * 1024))
    print("WROTE 1 GiB")
except OSError as e:
    print("stopped", e.errno)
"""
    res = sandbox.run_python(code, limits=Limits(wall_s=5.0, file_size_mb=8))
    _contained(res)
    assert "WROTE" not in res.stdout and "stopped 27" in res.stdout  # EFBIG


def test_no_privileges_and_no_new_namespaces(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
import os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("unshare", libc.unshare(0x10000000))  # CLONE_NEWUSER
try:
    os.setuid(0); print("SETUID")
except OSError as e:
    print("setuid denied")
print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert "unshare -1" in res.stdout and "SETUID" not in res.stdout
    assert "0000000000000000" in res.stdout


@pytest.mark.slow
def test_parallel_sandboxes_do_not_share_limits(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    """A fork bomb in one sandbox does not stop another from running."""
    from concurrent.futures import ThreadPoolExecutor

    bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n"
    with ThreadPoolExecutor(2) as ex:
        f_bomb = ex.submit(sandbox.run_python, bomb, limits=Limits(wall_s=3.0, cpu_s=2))
        time.sleep(0.5)
        ok = ex.submit(sandbox.run_python, "print(sum(range(10)))").result()
        f_bomb.result()
    assert ok.ok and ok.stdout.strip() == "45"


# -- the runner itself ---------------------------------------------------------------------


def test_exit_status_stdin_report_and_files(sandbox: Sandbox) -> None:
    code = (
        "import os, sys\n"
        "data = sys.stdin.read()\n"
        "os.write(int(os.environ['REWARDHUB_REPORT_FD']), data.upper().encode())\n"
        "print(open('helper.txt').read().strip(), file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    res = sandbox.run_python(code, files={"helper.txt": "beside"}, stdin=b"nonce", report=True)
    assert res.exit_code == 3 and not res.ok
    assert res.report == "NONCE" and res.stderr.strip() == "beside"


def test_non_utf8_output_is_replaced(sandbox: Sandbox) -> None:
    res = sandbox.run_python("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end')\n")
    assert res.ok and res.stdout == "ok \ufffd\ufffd end"


def test_file_names_must_stay_inside(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.run(["true"], {"../x": ""})
    with pytest.raises(ValueError):
        sandbox.run(["true"], {"/etc/x": ""})


def test_no_bwrap_refuses_unless_allowed() -> None:
    with pytest.raises(SandboxUnavailable, match="allow_unsandboxed"):
        Sandbox(bwrap="")
    plain = Sandbox(FAST, bwrap="", allow_unsandboxed=True)
    res = plain.run_python("import os\nprint(os.getcwd())\n")
    assert res.ok and not res.sandboxed and "rewardhub-unsandboxed-" in res.stdout
    slow = plain.run_python("import time\ntime.sleep(30)\n", limits=Limits(wall_s=0.5))
    assert slow.timed_out


def test_broken_bwrap_is_an_infrastructure_error(world_dir: Path) -> None:
    fake = world_dir / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    res = Sandbox(FAST, bwrap=str(fake)).run_python("print(1)")
    assert res.error is not None and "Permission denied" in res.error and not res.ok


@pytest.mark.slow
def test_attacks_as_code_exec_completions(host: dict) -> None:  # type: ignore[type-arg]
    """The same attacks as completions scored by ``code-exec``: all contained, all score 0."""
    import rewardhub as rh
    from rewardhub.sources.code import CodeExec

    attacks = {
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {host['port']}), timeout=1)\n",
        "write": f"open({str(host['file'])!r}, 'w').write('pwned')\n",
        "read": f"print(open({str(host['file'])!r}).read())\n",
        "fork bomb": "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n",
        "memory": "b = []\nwhile True:\n    b.append(bytearray(1 << 26))\n",
        "loop": "while True:\n    pass\n",
        "kill parent": "import os\nos.kill(os.getppid(), 9)\nos.kill(-1, 9)\n",
        "output": "import sys\nwhile True:\n    sys.stdout.write('z' * 65536)\n",
    }
    src = CodeExec({"timeout_s": 2.0, "cpu_s": 2, "memory_mb": 256, "runs": True})
    try:
        samples = [
            rh.Sample(
                prompt="", completion=code, reference="assert 'pwned' in open(__file__).read()"
            )
            for code in attacks.values()
        ]
        rows = src.score(samples)
    finally:
        src.close()
    # each a wrong answer (0) or a failed check (scored 0): never more
    assert all(isinstance(r, rh.Fail) or r[0] == 0.0 for r in rows), rows  # type: ignore[index]


# -- host secrets, other processes, the sandbox's init, file counts --------------------------


def test_no_host_secret_in_any_environment(
    sandbox: Sandbox,
    host: dict,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret-4411")
    monkeypatch.setenv("REWARDHUB_TOKEN", "rh-host-secret-4411")
    code = """
import os
seen = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", "1"]:
    try:
        seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
    except OSError as e:
        print("denied", pid, type(e).__name__)
print("ENV", seen, dict(os.environ))
"""
    res = sandbox.run_python(code)
    _contained(res)
    assert "ENV" in res.stdout and "host-secret-4411" not in res.stdout + res.stderr


def test_every_process_is_limited_and_pid_1_is_the_program(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    """No unlimited init to hijack: pid 1 is the program itself, under the rlimits."""
    code = """
import os
print("comm", open("/proc/1/comm").read().strip(), os.getpid())
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    lim = [l for l in open(f"/proc/{pid}/limits").read().splitlines() if "address space" in l]
    print("limit", pid, lim[0].split()[-3])
"""
    res = sandbox.run_python(code, limits=Limits(wall_s=5.0, memory_mb=300))
    _contained(res)
    assert "comm python3 1" in res.stdout or "comm python 1" in res.stdout, res.stdout
    limits = [line.split()[-1] for line in res.stdout.splitlines() if line.startswith("limit")]
    assert limits and set(limits) == {str(300 * 1024 * 1024)}, res.stdout


def test_ptrace_and_cross_process_memory_are_denied(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    """ptrace, process_vm_readv/writev, pidfd_getfd fail with EPERM (seccomp), whatever the
    target; a non-dumpable process's /proc files are closed to its own children."""
    from rewardhub._sandbox_setup import ARCH

    if ARCH is None:
        pytest.skip("no seccomp filter on this architecture")
    code = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: its /proc files are closed to others
os.environ["SECRET_IN_PARENT"] = "parent-secret-77"
secret = ctypes.create_string_buffer(b"parent-memory-77")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    ppid = os.getppid()
    for target in (1, ppid, os.getpid()):
        print("ptrace", target, libc.ptrace(16, target, 0, 0), ctypes.get_errno())  # ATTACH
    print("seize", libc.ptrace(0x4206, ppid, 0, 0), ctypes.get_errno())
    print("traceme", libc.ptrace(0, 0, 0, 0), ctypes.get_errno())
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    buf = ctypes.create_string_buffer(64)
    local = iovec(ctypes.addressof(buf), 16)
    remote = iovec(ctypes.addressof(secret), 16)
    n = libc.syscall(VM_READV, ppid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    print("vm_readv", n, ctypes.get_errno(), buf.raw[:16])
    for what in ("environ", "mem", "fd/0"):
        try:
            f = open(f"/proc/{ppid}/{what}", "rb")
            if what == "mem":
                f.seek(ctypes.addressof(secret))
            print("OPENED", what, f.read(64))
        except OSError as e:
            print("denied", what, e.errno)
    sys.stdout.flush()
    os._exit(0)
os.close(r)
os.waitpid(pid, 0)
"""
    res = sandbox.run_python(code.replace("VM_READV", str(ARCH.denied[1])))
    _contained(res)
    out = res.stdout
    assert out.count(" -1 1") >= 5 and "vm_readv -1 1" in out, out  # EPERM everywhere
    assert "OPENED" not in out and "-77" not in out, out
    assert out.count("denied") == 3, out


def test_file_count_flood_is_bounded(sandbox: Sandbox, host: dict) -> None:  # type: ignore[type-arg]
    code = """
import os
n = 0
try:
    for n in range(400_000):
        open(f"f{n}", "w").close()
    print("MADE ALL")
except OSError as e:
    print("stopped", n, e.errno)
"""
    res = sandbox.run_python(code, limits=Limits(wall_s=10.0, files=1000))
    _contained(res)
    assert "MADE ALL" not in res.stdout, res.stdout
    made = int(res.stdout.split()[1])
    assert 900 <= made < 1000 and res.stdout.split()[2] == "28", res.stdout  # ENOSPC


def test_seccomp_filter_program() -> None:
    """The hand-assembled BPF: each instruction is 8 bytes, jumps land inside the program."""
    import struct

    from rewardhub._sandbox_setup import _ARCHES, seccomp_filter

    for arch in _ARCHES.values():
        prog = seccomp_filter(arch)
        ins = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
        assert len(prog) % 8 == 0 and ins[-1][3] == 0x80000000 and ins[-3][3] == 0x7FFF0000
        for i, (code, jt, jf, _) in enumerate(ins):
            if code & 0x07 == 0x05:  # a jump
                assert i + 1 + max(jt, jf) < len(ins)
        denied = [k for code, jt, _, k in ins if code == 0x15 and jt > 0]
        assert set(denied) == set(arch.denied)


@pytest.mark.parametrize(
    "reference",
    [["assert True", "assert True"], {"inputs": ["1", "2"], "outputs": ["1", "2"]}],
    ids=["tests", "io"],
)
def test_spec_timeout_leaves_no_sandbox_process(host: dict, reference: object) -> None:  # type: ignore[type-arg]
    """The batch deadline (spec ``timeout_s``) stops the sandboxes, not only the waiting."""
    import rewardhub as rh

    hub = rh.Hub(entry_points=False)
    spec = {"sources": [{"type": "code-exec", "timeout_s": 1.5,
                         "config": {"timeout_s": 30, "cpu_s": 30}}], "normalize": "none"}  # fmt: skip
    code = "import time\nwhile True:\n    time.sleep(0.01)\n"
    samples = [rh.Sample(prompt="", completion=code, reference=reference)] * 2
    with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
        t0 = time.monotonic()
        res = pipe.score(samples)
        took = time.monotonic() - t0
        assert took < 5.0
        assert _settled(host["baseline"], timeout=1.0) == set(), "sandbox processes run on"
    assert all(e.get("code-exec") for e in res.vector.reasons)  # abstained, with the reason


@pytest.mark.parametrize("perl", [True, False], ids=["perl", "python"])
def test_setup_step_copies_files_and_bounds_tmp(perl: bool) -> None:
    """Both setup steps (Perl, or Python where Perl is missing) give the same sandbox."""
    sb = Sandbox(Limits(wall_s=10.0, files=64, tmpfs_mb=8))
    if not perl:
        sb.perl = None
    code = """
import os
st = os.statvfs("/tmp")
print(sorted(os.listdir(".")), open("d/e/x.txt").read(), open("b.bin", "rb").read(),
      st.f_files, st.f_blocks * st.f_frsize, os.getcwd())
"""
    res = sb.run_python(code, files={"d/e/x.txt": "hi", "b.bin": b"\x00\xff"})
    assert res.ok, res.stderr
    assert res.stdout.split() == [
        "['b.bin',", "'d',", "'main.py']", "hi", "b'\\x00\\xff'", "64", str(8 << 20), "/tmp/work",
    ]  # fmt: skip
