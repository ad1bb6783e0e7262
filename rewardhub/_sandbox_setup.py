"""Pieces of the sandbox that talk to the kernel directly: the seccomp filter and the setup
step that bounds ``/tmp``'s file count.

Both depend on the CPU architecture (system call numbers); :data:`ARCH` is None on one this
module does not know, and then neither is used (the sandbox still runs every process under
the rlimits, see :mod:`rewardhub.sandbox`).
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

__all__ = ["ARCH", "STAGING", "Arch", "seccomp_filter", "setup_argv"]


@dataclass(frozen=True)
class Arch:
    audit: int
    """AUDIT_ARCH_* value the kernel puts in ``seccomp_data.arch``"""
    denied: tuple[int, ...]
    """system calls that reach into another process: ptrace, process_vm_readv/writev, kcmp,
    pidfd_getfd"""
    mount: int
    prctl: int
    unshare: int
    x32: bool = False
    """x86-64: also deny the x32 ABI (numbers with bit 30 set), which would dodge the filter"""


_ARCHES = {
    "x86_64": Arch(
        0xC000003E, (101, 310, 311, 312, 438), mount=165, prctl=157, unshare=272, x32=True
    ),
    "aarch64": Arch(0xC00000B7, (117, 270, 271, 272, 438), mount=40, prctl=167, unshare=97),
}
ARCH: Arch | None = _ARCHES.get(platform.machine())

# classic BPF (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _ERRNO, _KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_OFF_NR, _OFF_ARCH = 0, 4


def seccomp_filter(arch: Arch) -> bytes:
    """A seccomp program (an array of ``struct sock_filter``, as ``bwrap --seccomp`` reads):
    a foreign architecture is killed, the ``denied`` calls fail with EPERM, the rest run."""
    tail = len(arch.denied) + (1 if arch.x32 else 0)  # checks between "load nr" and "allow"
    prog = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        # equal: go on; else jump over the rest to the last instruction (kill)
        (_JEQ_K, 0, tail + 3, arch.audit),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    checks = ([(_JGE_K, 0x40000000)] if arch.x32 else []) + [(_JEQ_K, nr) for nr in arch.denied]
    for i, (op, k) in enumerate(checks):
        to_deny = len(checks) - i  # skip the remaining checks and "allow"
        prog.append((op, to_deny, 0, k))
    prog += [
        (_RET_K, 0, 0, _ALLOW),
        (_RET_K, 0, 0, _ERRNO | errno.EPERM),
        (_RET_K, 0, 0, _KILL_PROCESS),
    ]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


#: where bwrap puts the program's files; the setup step copies them into the working directory
STAGING = "/.rewardhub-files"

# Runs first inside the sandbox, with CAP_SYS_ADMIN in the sandbox's own user namespace only:
# in a mount namespace of its own it mounts a fresh /tmp bounded in inodes as well as bytes
# (bwrap's --size bounds only bytes, and bwrap's mounts belong to a user namespace the sandbox
# cannot remount in), copies the program's files into /tmp/work, clears its ambient
# capabilities so the program it execs next has none, and execs it. 0x20000 = CLONE_NEWNS,
# 6 = MS_NOSUID|MS_NODEV, 47, 4 = PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL.
_PERL = (
    "my ($u, $m, $p, $o) = splice(@ARGV, 0, 4);"
    'sub fail { print STDERR "rewardhub sandbox: $_[0]: $!\n"; exit 125 }'
    'syscall($u, 0x20000) == 0 or fail("unshare");'
    'syscall($m, my $s = "tmpfs", my $t = "/tmp", my $f = "tmpfs", 6, $o) == 0 or fail("mount /tmp");'
    'mkdir("/tmp/work", 0755) or fail("mkdir");'
    'sub copy { my ($s, $d) = @_; opendir(my $h, $s) or fail("opendir $s");'
    ' for my $n (grep { $_ ne "." && $_ ne ".." } readdir $h) {'
    ' if (-d "$s/$n") { mkdir("$d/$n") or fail("mkdir"); copy("$s/$n", "$d/$n") }'
    ' else { open(my $i, "<:raw", "$s/$n") or fail("read $n");'
    ' open(my $o, ">:raw", "$d/$n") or fail("write $n");'
    ' local $/; print $o scalar(<$i>); close($o) or fail("write $n") } } }'
    f'copy("{STAGING}", "/tmp/work") if -d "{STAGING}";'
    'chdir("/tmp/work") or fail("chdir");'
    'syscall($p, 47, 4, 0, 0, 0) == 0 or fail("drop capabilities");'
    'exec { $ARGV[0] } @ARGV or fail("exec $ARGV[0]");'
)
_PYTHON = (
    "import ctypes,os,shutil,sys\n"
    "c=ctypes.CDLL(None,use_errno=True)\n"
    "def ck(r,what):\n"
    " if r: print('rewardhub sandbox: %s: %s'%(what,os.strerror(ctypes.get_errno())),"
    "file=sys.stderr); os._exit(125)\n"
    "ck(c.unshare(0x20000),'unshare')\n"
    "ck(c.mount(b'tmpfs',b'/tmp',b'tmpfs',6,sys.argv[1].encode()),'mount /tmp')\n"
    "os.mkdir('/tmp/work',0o755)\n"
    f"os.path.isdir('{STAGING}') and shutil.copytree('{STAGING}','/tmp/work',dirs_exist_ok=True)\n"
    "os.chdir('/tmp/work')\n"
    "ck(c.prctl(47,4,0,0,0),'drop capabilities')\n"
    "os.execv(sys.argv[2],sys.argv[2:])"
)


def setup_argv(
    arch: Arch, perl: str | None, python: str, tmpfs_bytes: int, files: int
) -> list[str]:
    """The argv prefix of the setup step."""
    opts = f"size={tmpfs_bytes},nr_inodes={files},mode=755"
    if perl:  # a few ms to start, against tens for Python
        return [perl, "-e", _PERL, str(arch.unshare), str(arch.mount), str(arch.prctl), opts]
    return [python, "-I", "-S", "-c", _PYTHON, opts]
