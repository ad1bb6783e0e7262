"""An output file written while the run goes: locked, streamed to ``OUT.partial``, renamed into
place when the run finishes.

The lock (``flock`` on ``OUT.lock``, released by the kernel if the process dies) stops a second
run from writing the same output; the partial file holds whole lines in input order, so the
work done so far is readable after a crash or Ctrl-C.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from rewardhub.errors import RewardHubError


class OutputError(RewardHubError):
    """The output cannot be written (reported before any scoring)."""


def check_directory(path: Path, what: str) -> None:
    """``path``'s directory must exist: we never create directories on a user's behalf."""
    parent = path.parent
    if not parent.exists():
        raise OutputError(f"{what} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{what} {str(path)!r}: {str(parent)!r} is not a directory")
    if path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a directory; give a file name")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class LockedOutput:
    """``OUT`` written as ``OUT.partial`` under ``OUT.lock``; :meth:`commit` moves it into place.

    A side file (``OUT.rejects.jsonl``) is written the same way, opened on its first line.
    """

    def __init__(self, path: Path, side_suffix: str = ".rejects.jsonl") -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.side = path.with_name(path.name + side_suffix)
        self.side_partial = self.side.with_name(self.side.name + ".partial")
        self._lock_path = path.with_name(path.name + ".lock")
        self._lock: int | None = None
        self._fh: IO[bytes] | None = None
        self._side_fh: IO[bytes] | None = None
        self.lines = 0
        self.side_lines = 0
        #: whole lines an interrupted run left in the partial file, kept by ``open(resume=True)``
        self.kept = 0

    def open(self, *, resume: bool = False) -> LockedOutput:
        """Check the path, take the lock and create the partial file, or raise OutputError.

        With ``resume`` an interrupted run's partial files are kept: their whole lines stay
        (:attr:`kept` counts them; a last line cut off without its newline is dropped) and new
        lines follow them."""
        check_directory(self.path, "output")
        self._lock = self._take_lock()
        try:
            if resume and self.partial.is_file():
                self._fh = self.partial.open("r+b")
                self.kept = self.lines = _keep_whole_lines(self._fh)
                if self.side_partial.is_file():
                    self._side_fh = self.side_partial.open("r+b")
                    self.side_lines = _keep_whole_lines(self._side_fh)
            else:
                self._fh = self.partial.open("wb")
        except OSError as exc:
            self.release()
            raise OutputError(f"cannot write {str(self.partial)!r}: {_os_reason(exc)}") from None
        return self

    def _take_lock(self) -> int:
        import fcntl

        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(
                    f"cannot write in {str(self.path.parent)!r}: {_os_reason(exc)}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise OutputError(
                    f"another `rewardhub score` (pid {holder}) is writing {str(self.path)!r}; "
                    "wait for it to finish or choose another --output"
                ) from None
            # its last holder may have unlinked the file between our open and our flock
            try:
                same = os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)

    def write(self, data: bytes, lines: int) -> None:
        assert self._fh is not None, "open() first"
        self._fh.write(data)
        self.lines += lines

    def write_side(self, data: bytes) -> None:
        if self._side_fh is None:
            self._side_fh = self.side_partial.open("wb")
        self._side_fh.write(data)
        self.side_lines += 1

    def flush(self) -> None:
        """Hand the lines written so far to the OS: a crash after this keeps them."""
        for fh in (self._fh, self._side_fh):
            if fh is not None:
                fh.flush()

    def commit(self) -> None:
        """The run finished: the partial files become the output (a previous run's side file
        goes, since the output describes this run only)."""
        self._close_files()
        os.replace(self.partial, self.path)
        if self.side_lines:
            os.replace(self.side_partial, self.side)
        else:
            self.side.unlink(missing_ok=True)

    def _close_files(self) -> None:
        for fh in (self._fh, self._side_fh):
            if fh is not None:
                fh.close()
        self._fh = self._side_fh = None

    def release(self) -> None:
        """Close what is open and drop the lock. An unfinished run's partial files stay, unless
        they are empty (the run stopped before its first line)."""
        self._close_files()
        if self._lock is not None and not self.lines:
            self.partial.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock_path.unlink(missing_ok=True)  # while still holding it; see _take_lock
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> LockedOutput:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _keep_whole_lines(fh: IO[bytes]) -> int:
    """Cut a file open for update after its last newline, leave it positioned at the end, and
    return how many lines it holds. Reads in bounded blocks (the file may be large)."""
    count = 0
    end = 0
    fh.seek(0)
    pos = 0
    while block := fh.read(1 << 20):
        n = block.count(b"\n")
        if n:
            count += n
            end = pos + block.rfind(b"\n") + 1
        pos += len(block)
    fh.seek(end)
    fh.truncate()
    return count


_SQLITE_MAGIC = b"SQLite format 3\x00"


def prepare_cache(path: Path, *, fresh: bool) -> None:
    """Check a cache path before any work, and empty it if ``fresh``.

    An existing file that is not an SQLite database is refused, never used or cleared: a
    mistyped ``--cache`` must not destroy the file it names.
    """
    check_directory(path, "cache")
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise OutputError(f"cannot read cache {str(path)!r}: {_os_reason(exc)}") from None
        if head and head != _SQLITE_MAGIC:
            raise OutputError(
                f"cache {str(path)!r} exists and is not an SQLite file; refusing to use or "
                "clear it (give another --cache path)"
            )
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
