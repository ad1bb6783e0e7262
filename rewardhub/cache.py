"""Result caches: a bounded in-memory LRU per source and an optional sqlite file."""

from __future__ import annotations

import sqlite3
import struct
import sys
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from rewardhub.errors import RewardHubError
from rewardhub.types import FloatArray

#: One cached result: the row as the raw bytes of its float64 values or, when it has a std, a
#: reason or an outcome that is not a value, the tuple (row, std or None, reason or None,
#: :class:`~rewardhub.outcome.Outcome` code). Bytes are not tracked by
#: the garbage collector, so a cache of 100k plain rows adds nothing to each collection
#: (tuples of float lists did: GC passes over them cost a third of a 10k-sample scoring
#: call), and rows join back into an array with one ``np.frombuffer``.
Entry = bytes | tuple[bytes, "bytes | None", "str | None", int]


def pack_rows(matrix: FloatArray) -> list[bytes]:
    """One bytes object per row of a float64 matrix."""
    width = matrix.shape[1] * 8
    buf = np.ascontiguousarray(matrix, dtype=np.float64).tobytes()
    return [buf[i : i + width] for i in range(0, len(buf), width)] if width else [b""] * len(matrix)


def unpack_rows(rows: Sequence[bytes], k: int) -> FloatArray:
    """Inverse of :func:`pack_rows`."""
    return np.frombuffer(b"".join(rows), dtype=np.float64).reshape(len(rows), k)


class MemoryCache:
    """A bounded LRU of entries for one source.

    Hits refresh their entry's place only once the cache is half full: before that nothing can
    be evicted soon, and skipping the refresh saves a dict operation per sample and source on
    every cached call. The order then only differs from strict LRU among entries whose last
    hit came while the cache was under half full, all of which are old by then.

    Safe to share between threads: each call holds a lock (one acquire per batch, not per
    sample), since a refresh racing an eviction would raise ``KeyError`` from ``move_to_end``.
    """

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._data: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[Hashable]) -> list[Entry | None]:
        data = self._data
        if not data:
            return [None] * len(keys)
        with self._lock:
            found = list(map(data.get, keys))
            if 2 * len(data) < self.max_items:
                return found
            misses = found.count(None)
            if misses == 0:  # all hits: refresh them in C
                deque(map(data.move_to_end, keys), maxlen=0)
            elif misses < len(found):
                deque(map(data.move_to_end, [k for k, e in zip(keys, found) if e is not None]), 0)
        return found

    def put_many(self, keys: Sequence[Hashable], entries: Sequence[Entry]) -> None:
        if self.max_items <= 0:
            return
        data = self._data
        with self._lock:
            # new keys land at the most-recent end; a key that is already there (two calls
            # raced on it) keeps its place, which only makes it a little older than it should
            data.update(zip(keys, entries))
            while len(data) > self.max_items:
                data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


#: a payload's header: outcome code, whether a reason follows, bytes of values, bytes of std
#: (``_NO_STD`` when there is none); then the values, the std and the reason (UTF-8), with
#: floats as little-endian float64
_HEADER = struct.Struct("<BBII")
_NO_STD = 0xFFFFFFFF
_LITTLE = sys.byteorder == "little"


def _le(row: bytes) -> bytes:
    return row if _LITTLE else np.frombuffer(row, np.float64).astype("<f8").tobytes()


def _native(row: bytes) -> bytes:
    return row if _LITTLE else np.frombuffer(row, "<f8").astype(np.float64).tobytes()


def _dump(e: Entry) -> bytes:
    values, std, reason, code = (e, None, None, 0) if isinstance(e, bytes) else e
    text = b"" if reason is None else reason.encode("utf-8", "surrogatepass")
    head = _HEADER.pack(code, reason is not None, len(values), _NO_STD if std is None else len(std))
    return b"".join((head, _le(values), b"" if std is None else _le(std), text))


def _load(payload: bytes) -> Entry:
    code, has_reason, nv, ns = _HEADER.unpack_from(payload)
    at = _HEADER.size
    values = _native(payload[at : at + nv])
    if not has_reason and ns == _NO_STD and code == 0:
        return values  # a plain row, as the memory cache keeps it
    at += nv
    std = None if ns == _NO_STD else _native(payload[at : at + ns])
    at += 0 if std is None else ns
    reason = payload[at:].decode("utf-8", "surrogatepass") if has_reason else None
    return (values, std, reason, code)


#: the layout of the cache file: 2 stores each entry's outcome code (version 1, unnumbered,
#: kept only the reason text, from which the outcome can no longer be read); 3 stores it as
#: binary (a JSON payload cost more to read back than a cheap source costs to compute) under
#: a digest taken with orjson
SCHEMA_VERSION = 3


class DiskCache:
    """A sqlite-backed cache shared by all sources of a pipeline; survives restarts.

    The file carries its layout version (``PRAGMA user_version``). A file from an older
    rewardhub is emptied with a warning (its entries are recomputed); one from a newer
    rewardhub is refused."""

    _CHUNK = 500

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._check_version()
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (source TEXT NOT NULL, sample TEXT NOT NULL, "
                "payload BLOB NOT NULL, PRIMARY KEY (source, sample)) WITHOUT ROWID"
            )
            self._db.commit()

    def _check_version(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            self._db.close()
            raise RewardHubError(
                f"the disk cache {str(self.path)!r} was written by a newer rewardhub (layout "
                f"{version}, this one reads {SCHEMA_VERSION}); upgrade rewardhub or use "
                "another cache path"
            )
        if version < SCHEMA_VERSION:
            old = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'results'"
            ).fetchone()
            if old is not None:
                (count,) = self._db.execute("SELECT COUNT(*) FROM results").fetchone()
                self._db.execute("DROP TABLE results")
                warnings.warn(
                    f"the disk cache {str(self.path)!r} was written by an older rewardhub "
                    f"(layout {version}); its {count} entries are "
                    "dropped and will be recomputed",
                    UserWarning,
                    stacklevel=4,
                )
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def get_many(self, source: str, digests: Sequence[str]) -> dict[str, Entry]:
        out: dict[str, Entry] = {}
        with self._lock:
            self._check_open()
            for i in range(0, len(digests), self._CHUNK):
                chunk = list(digests[i : i + self._CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT sample, payload FROM results WHERE source = ? AND sample IN ({marks})",
                    [source, *chunk],
                )
                out.update((d, _load(p)) for d, p in rows)
        return out

    def put_many(self, source: str, digests: Sequence[str], entries: Sequence[Entry]) -> None:
        with self._lock:
            self._check_open()
            self._db.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                [(source, d, _dump(e)) for d, e in zip(digests, entries)],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM results").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RewardHubError(f"the disk cache {str(self.path)!r} is closed")
