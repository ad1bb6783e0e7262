"""The scoring engine: batching, dedup, caching, concurrency, time-outs and outcomes.

A source that raises or returns the wrong output abstains (NaN plus the reason in
``RewardBatch.errors``) for the samples it was scoring; a sample that times out on its own is a
failed check. Nothing yields a silent 0, no sample is lost, and an abstention is never cached.
All calls of one engine run on its own event loop (a thread started on first use), so async
sources may keep loop-bound state (semaphores, HTTP clients) from one call to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import itertools
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rewardhub import _trace
from rewardhub._threads import DaemonThreadPool
from rewardhub.cache import DiskCache, Entry, MemoryCache, pack_rows, unpack_rows
from rewardhub.errors import RewardHubError
from rewardhub.source import (
    _DEADLINE,
    NUMBER,
    Abstain,
    AbstainNow,
    Fail,
    FailNow,
    RewardSource,
    ScoresWithStd,
    wrong_output,
)
from rewardhub.types import FAILED, NOT_APPLICABLE, FloatArray, RewardBatch, Sample, SampleKey
from rewardhub.when import Condition

T = TypeVar("T")

__all__ = ["FAILED", "NOT_APPLICABLE", "BoundSource", "Engine", "EngineStats", "run_sync"]

TIMEOUT = "timeout after "


def cacheable(reason: str | None) -> bool:
    """Whether a result with this reason may be cached: a value, or a failed check that is a
    verdict on the content. Abstentions (the machinery failed) and time-outs (which depend on
    the machine's load) are recomputed on the next call."""
    return reason is None or (reason.startswith(FAILED) and not reason.startswith(FAILED + TIMEOUT))


def files_digest(paths: Sequence[Path]) -> str:
    """A digest of the names and contents of ``paths`` (a folder: every file under it)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f).encode("utf-8", "surrogatepass") + b"\0")
            try:
                h.update(f.read_bytes())
            except OSError as exc:  # a missing file is part of the state too
                h.update(f"<unreadable: {exc.strerror}>".encode())
            h.update(b"\0")
    return h.hexdigest()


@dataclass
class BoundSource:
    """A configured source plus the pipeline's settings for it."""

    id: str
    source: RewardSource
    objectives: tuple[str, ...]
    timeout_s: float | None = None
    batch_size: int = 256
    concurrency: int = 4
    when: Condition | None = None
    cache: bool = True
    #: keep results in the disk cache too (off for cheap sources, whose look-up costs more
    #: than recomputing; ``cache.cheap_sources`` turns it back on)
    disk: bool = True
    cache_key: str = ""

    def __post_init__(self) -> None:
        if not self.cache_key:
            cfg = self.source.config.model_dump(mode="json")
            cls = type(self.source)
            files = list(self.source.cache_files())
            blob = json.dumps(
                [
                    self.source.type,
                    f"{cls.__module__}.{cls.__qualname__}",
                    cls.version,
                    cfg,
                    files_digest(files) if files else "",
                ],
                sort_keys=True,
                default=repr,
            )
            self.cache_key = f"{self.source.type}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    @property
    def runs_inline(self) -> bool:
        """Batches run in the event-loop thread (see ``RewardSource.inline``)."""
        return self.source.inline and not self.source.is_async() and self.timeout_s is None


@dataclass
class EngineStats:
    """Counters since the engine was made (for benchmarks and ``--resume`` reports)."""

    calls: int = 0
    computed: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    deduplicated: int = 0
    abstained: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """wall time spent per source id (cache look-ups included), for the server's metrics"""


@dataclass(repr=False)  # a repr of 10k rows is never wanted (asyncio formats task results)
class _Result:
    """One source's output over the unique samples of a call."""

    values: FloatArray
    std: FloatArray | None
    reasons: list[str | None]


def _numbers_only(types: set[type]) -> bool:
    return all(issubclass(t, NUMBER) for t in types)


def _coerce_matrix(x: Any, m: int, k: int, what: str) -> FloatArray:
    arr = np.asarray(x)
    if arr.dtype.kind == "O":
        if not _numbers_only(set(map(type, arr.ravel().tolist())) - {type(None)}):
            bad = next(
                c for c in arr.ravel().tolist() if c is not None and not isinstance(c, NUMBER)
            )
            raise ValueError(f"{what} holds {wrong_output(bad).removeprefix('wrong output: ')}")
        arr = np.array([math.nan if c is None else c for c in arr.ravel().tolist()]).reshape(
            arr.shape
        )
    elif arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} of dtype {arr.dtype}, expected numbers")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1 and k == 1 and arr.shape[0] == m:
        arr = arr.reshape(m, 1)
    if arr.shape != (m, k):
        raise ValueError(f"returned {what} of shape {arr.shape}, expected ({m}, {k})")
    return arr


def _rows_to_matrix(rows: list[Any], m: int, k: int) -> FloatArray:
    """``m`` rows of ``k`` numbers (or, for one objective, ``m`` numbers) as a matrix;
    TypeError/ValueError on anything else (a None, an Abstain, a ragged row, a string that
    numpy would parse). Flattening in C is twice as fast as ``np.asarray`` on nested lists;
    the type checks run in C too (``set(map(type, ...))``)."""
    if k == 1 and m and isinstance(rows[0], (int, float)):  # a flat list, as TRL returns
        if not _numbers_only(set(map(type, rows))):
            raise TypeError("not all numbers")
        return np.fromiter(rows, np.float64, count=m).reshape(m, 1)
    if not set(map(type, rows)) <= _ROW_TYPES:
        raise TypeError("not all rows are lists")
    cells = list(itertools.chain.from_iterable(rows))
    if len(cells) != m * k or not _numbers_only(set(map(type, cells))):
        raise ValueError("ragged rows or cells that are not numbers")
    return np.fromiter(cells, np.float64, count=m * k).reshape(m, k)


_ROW_TYPES = {list, tuple, np.ndarray}


def _row_cells(row: Any, k: int) -> list[Any] | str:
    """The cells of one row, or the reason it is not a row of ``k`` numbers (or None)."""
    if isinstance(row, NUMBER) and k == 1:
        return [row]
    if not isinstance(row, (list, tuple, np.ndarray)):
        return wrong_output(row) + f" or a list of {k}"
    cells = row.tolist() if isinstance(row, np.ndarray) else list(row)
    if len(cells) != k:
        return f"wrong output: a row of {len(cells)} values, expected {k}"
    for c in cells:
        if c is not None and not isinstance(c, NUMBER):
            return wrong_output(c)
    return cells


def _to_rows(
    out: Any, m: int, k: int, fail: Sequence[float]
) -> tuple[FloatArray, FloatArray | None, list[str | None]]:
    """Check and convert what ``score`` returned. Raises ValueError on a wrong shape.

    A :class:`Fail` row becomes the failing values ``fail`` with the reason ``failed: ...``."""
    std = None
    if isinstance(out, ScoresWithStd):
        std = _coerce_matrix(out.std, m, k, "std")
        out = out.values
    reasons: list[str | None] = [None] * m
    if isinstance(out, np.ndarray):
        values = _coerce_matrix(out, m, k, "an array")
    else:
        try:
            rows = list(out)
        except TypeError:
            raise ValueError(f"returned {type(out).__name__}, expected {m} rows") from None
        if len(rows) != m:
            raise ValueError(f"returned {len(rows)} rows for {m} samples")
        try:  # fast path: every row is k numbers
            values = _rows_to_matrix(rows, m, k)
        except (ValueError, TypeError):
            values = np.full((m, k), math.nan)
            for i, row in enumerate(rows):
                if row is None:
                    reasons[i] = "abstained"
                elif isinstance(row, Abstain):
                    reasons[i] = row.reason
                elif isinstance(row, Fail):
                    values[i] = fail
                    reasons[i] = FAILED + row.reason
                else:
                    cells = _row_cells(row, k)
                    if isinstance(cells, str):
                        reasons[i] = cells
                    else:
                        values[i] = [math.nan if c is None else float(c) for c in cells]
    if np.isinf(values).any():
        raise ValueError("returned inf; rewards must be finite (NaN or None abstains)")
    nan_rows = np.isnan(values).any(axis=1)
    for i in np.flatnonzero(nan_rows).tolist():
        if reasons[i] is None:
            reasons[i] = "abstained"
    return values, std, reasons


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AbstainNow):
        return exc.reason
    text = str(exc).strip().splitlines()
    return f"error: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Engine:
    """Runs a pipeline's sources over a batch and assembles the RewardBatch."""

    def __init__(
        self,
        sources: Sequence[BoundSource],
        *,
        memory_items: int = 100_000,
        cache_path: str | None = None,
        max_threads: int | None = None,
    ) -> None:
        self.sources = list(sources)
        self.objectives = tuple(o for b in self.sources for o in b.objectives)
        self._memory = {b.cache_key: MemoryCache(memory_items) for b in self.sources}
        self.disk = DiskCache(cache_path) if cache_path else None
        # One thread per source, at least one per core: more CPU-bound Python threads only
        # fight over the GIL (12 threads made 10k rule scores 15% slower than 3). I/O-bound
        # sources should define `ascore`, which runs on the event loop, not here.
        self._max_threads = max_threads or max(len(self.sources), os.cpu_count() or 2)
        # daemon threads: a call abandoned at its time-out must not block interpreter exit
        self._pool: DaemonThreadPool | None = None
        self._pool_lock = threading.Lock()
        self._loop: _LoopThread | None = None
        self._threads: asyncio.Semaphore | None = None  # made on the engine's loop
        self._closed = False
        self.stats = EngineStats()
        self._trace = _trace.enabled()

    # -- public ------------------------------------------------------------------------------

    def score(self, samples: Sequence[Sample]) -> RewardBatch:
        """Score synchronously, on the engine's event loop (works under a running loop too,
        e.g. in a notebook: the caller's thread waits)."""
        runner = self._runner()
        if runner.is_current():
            raise RewardHubError(
                "Engine.score was called from the engine's own event loop (a source scoring "
                "through its own pipeline?); use 'await pipeline.ascore(...)' there"
            )
        return runner.run(self._ascore(samples))

    async def ascore(self, samples: Sequence[Sample]) -> RewardBatch:
        """Score from async code: the work runs on the engine's loop, the caller awaits it."""
        runner = self._runner()
        if runner.is_current():
            return await self._ascore(samples)
        fut = asyncio.run_coroutine_threadsafe(self._ascore(samples), runner.loop)
        return await asyncio.wrap_future(fut)

    def _runner(self) -> _LoopThread:
        with self._pool_lock:
            if self._closed:
                raise RewardHubError(
                    "this pipeline is closed; build a new one (Pipeline.from_spec / from_yaml) "
                    "to score again"
                )
            if self._loop is None:
                self._loop = _LoopThread()
                # stop the loop when the engine is dropped without close() (no reference to
                # self here, or the engine would never be collected)
                weakref.finalize(self, self._loop.stop)
            return self._loop

    async def _ascore(self, samples: Sequence[Sample]) -> RewardBatch:
        samples = list(samples)
        self.stats.calls += 1
        keys = [s.key for s in samples]
        n = len(samples)
        # key → index of its first occurrence (built in C: later duplicates are overwritten by
        # earlier ones because the pairs go in reversed)
        first = dict(zip(reversed(keys), range(n - 1, -1, -1)))
        self.stats.deduplicated += n - len(first)
        if len(first) == n:
            unique, ukeys, inv = samples, keys, np.arange(n)
        else:
            unique_idx = sorted(first.values())
            unique = [samples[i] for i in unique_idx]
            ukeys = [keys[i] for i in unique_idx]
            pos = {key: j for j, key in enumerate(ukeys)}
            inv = np.array([pos[key] for key in keys], dtype=np.intp)  # row in the unique list
        # sync batches in flight never outnumber the worker threads, so none waits in the
        # executor's queue with its time-out clock running (one semaphore for every call:
        # they all run on this loop)
        if self._threads is None:
            self._threads = asyncio.Semaphore(self._max_threads)
        threads = self._threads
        results = await asyncio.gather(
            *(self._run_source(b, unique, ukeys, threads) for b in self.sources)
        )
        return self._assemble(results, inv)

    def close(self) -> None:
        """Stop the event loop and the worker threads, close the disk cache and the sources.
        Later calls raise a clear error; closing twice is harmless."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            loop, self._loop = self._loop, None
            pool, self._pool = self._pool, None
        if loop is not None:
            loop.stop()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self.disk is not None:
            self.disk.close()
        for b in self.sources:
            b.source.close()

    # -- internals ---------------------------------------------------------------------------

    def _executor(self) -> DaemonThreadPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = DaemonThreadPool(self._max_threads, thread_name_prefix="rewardhub")
            return self._pool

    def _abandon_pool(self) -> None:
        """A timed-out sync call keeps its thread until it returns: hand later work to a fresh
        pool so that hung calls cannot starve the other sources."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

    def _assemble(self, results: list[_Result], inv: Any) -> RewardBatch:
        n = len(inv)
        values = (
            np.concatenate([r.values for r in results], axis=1)[inv]
            if results
            else np.zeros((n, 0))
        )
        std = None
        if any(r.std is not None for r in results):
            std = np.concatenate(
                [r.std if r.std is not None else np.full_like(r.values, math.nan) for r in results],
                axis=1,
            )[inv]
        errors: list[dict[str, str]] = [{} for _ in range(n)]
        for b, r in zip(self.sources, results):
            if any(r.reasons):
                for i, u in enumerate(inv.tolist()):
                    reason = r.reasons[u]
                    if reason is not None:
                        errors[i][b.id] = reason
        sources = tuple(b.id for b in self.sources for _ in b.objectives)
        return RewardBatch(values, self.objectives, std, tuple(errors), sources)

    async def _run_source(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        threads: asyncio.Semaphore,
    ) -> _Result:
        t0 = time.perf_counter()
        u, k = len(samples), len(b.objectives)
        values = np.full((u, k), math.nan)
        std: FloatArray | None = None
        reasons: list[str | None] = [None] * u

        todo = list(range(u))
        if b.when is not None:
            todo = []
            for i, s in enumerate(samples):
                if b.when(s):
                    todo.append(i)
                else:
                    reasons[i] = NOT_APPLICABLE

        def place(idx: list[int], entries: Sequence[Entry]) -> None:
            """Write cached or computed entries into rows ``idx`` (one numpy assignment)."""
            nonlocal std
            if not idx:
                return
            # idx is increasing, so a full-length idx is every row: a plain slice assignment
            rows: Any = slice(None) if len(idx) == u else idx
            try:  # the common case: plain rows, no std, no abstention (joined in C)
                values[rows] = unpack_rows(entries, k)  # type: ignore[arg-type]
                return
            except TypeError:  # some entries are (row, std, reason) tuples
                values[rows] = unpack_rows(
                    [e if isinstance(e, bytes) else e[0] for e in entries], k
                )
            for i, e in zip(idx, entries):
                if isinstance(e, bytes):
                    continue
                if e[2] is not None:
                    reasons[i] = e[2]
                if e[1] is not None:
                    if std is None:
                        std = np.full((u, k), math.nan)
                    std[i] = np.frombuffer(e[1])

        if b.cache and todo:
            mem = self._memory[b.cache_key]
            hits = mem.get_many(keys if len(todo) == u else [keys[i] for i in todo])
            n_miss = hits.count(None)
            if n_miss == len(hits):  # a cold call: no scan needed
                missing = todo
            else:
                missing = [i for i, e in zip(todo, hits) if e is None] if n_miss else []
            if not missing:
                place(todo, hits)  # type: ignore[arg-type]  # every entry is present
            elif len(missing) < len(todo):
                found = [(i, e) for i, e in zip(todo, hits) if e is not None]
                place([i for i, _ in found], [e for _, e in found])
            self.stats.memory_hits += len(todo) - len(missing)
            if missing and self.disk is not None and b.disk:
                digests = [samples[i].digest for i in missing]
                on_disk = {  # files written by older versions may hold abstentions
                    d: e
                    for d, e in self.disk.get_many(b.cache_key, digests).items()
                    if isinstance(e, bytes) or cacheable(e[2])
                }
                hit_idx = [i for i, d in zip(missing, digests) if d in on_disk]
                hit_entries = [on_disk[d] for d in digests if d in on_disk]
                place(hit_idx, hit_entries)
                mem.put_many([keys[i] for i in hit_idx], hit_entries)
                self.stats.disk_hits += len(hit_idx)
                missing = [i for i, d in zip(missing, digests) if d not in on_disk]
            todo = missing

        if todo:
            sem = asyncio.Semaphore(b.concurrency)
            size = b.batch_size
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            # the common case, every row to compute: address each chunk by a slice, which is
            # cheaper than gathering and scattering by index
            whole = len(todo) == u
            rows: list[Any] = [slice(c[0], c[-1] + 1) if whole else c for c in chunks]
            outs: list[Any] = await asyncio.gather(
                *(
                    self._run_chunk(
                        b, samples[r] if whole else [samples[i] for i in r], sem, threads
                    )
                    for r in rows
                )
            )
            self.stats.computed += len(todo)
            # a time-out is attributable only per sample: re-run the samples of a batch that
            # timed out one by one (same time-out each, within the source's concurrency), so
            # the completion that causes it fails its check and the others get their values
            again = [
                i
                for c, o in zip(chunks, outs)
                if isinstance(o, _TimedOut) and len(c) > 1
                for i in c
            ]
            if again:
                kept = [
                    j
                    for j, (c, o) in enumerate(zip(chunks, outs))
                    if not (isinstance(o, _TimedOut) and len(c) > 1)
                ]
                singles = await asyncio.gather(
                    *(self._run_chunk(b, [samples[i]], sem, threads) for i in again)
                )
                chunks = [chunks[j] for j in kept] + [[i] for i in again]
                rows = [rows[j] for j in kept] + [[i] for i in again]
                outs = [outs[j] for j in kept] + list(singles)
            fails = np.asarray(b.source.fail_values(), dtype=np.float64)
            for chunk, r, out in zip(chunks, rows, outs):
                if isinstance(out, _TimedOut):  # one sample, alone: it caused the time-out
                    out = (fails.reshape(1, k).copy(), None, [FAILED + out])
                elif isinstance(out, str):  # the whole chunk abstained: do not cache it
                    for i in chunk:
                        reasons[i] = out
                    continue
                cv, cs, cr = out
                values[r] = cv
                if cs is not None:
                    if std is None:
                        std = np.full((u, k), math.nan)
                    std[r] = cs
                clean = cr.count(None) == len(cr)
                if not clean:
                    for i, reason in zip(chunk, cr):
                        reasons[i] = reason
                if b.cache:
                    self._store(b, samples, keys, chunk, r if whole else chunk, cv, cs, cr, clean)

        abstained = u - reasons.count(None)
        if abstained:
            self.stats.abstained[b.id] = self.stats.abstained.get(b.id, 0) + abstained
        elapsed = time.perf_counter() - t0
        self.stats.seconds[b.id] = self.stats.seconds.get(b.id, 0.0) + elapsed
        if self._trace:
            _trace.source_timing(b.id, b.source.type, u, elapsed)
        return _Result(values, std, reasons)

    def _store(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        chunk: list[int],
        r: Any,
        cv: FloatArray,
        cs: FloatArray | None,
        cr: list[str | None],
        clean: bool,
    ) -> None:
        """Cache a computed chunk, leaving out what may not be replayed (see :func:`cacheable`)."""
        packed = pack_rows(cv)
        entries: list[Entry] = (
            packed  # type: ignore[assignment]
            if cs is None and clean
            else list(zip(packed, [None] * len(cr) if cs is None else pack_rows(cs), cr))
        )
        chunk_keys: list[SampleKey] = keys[r] if isinstance(r, slice) else [keys[i] for i in chunk]
        if not clean and not all(map(cacheable, cr)):
            ok = [j for j, reason in enumerate(cr) if cacheable(reason)]
            entries = [entries[j] for j in ok]
            chunk_keys = [chunk_keys[j] for j in ok]
            chunk = [chunk[j] for j in ok]
        self._memory[b.cache_key].put_many(chunk_keys, entries)
        if self.disk is not None and b.disk:
            self.disk.put_many(b.cache_key, [samples[i].digest for i in chunk], entries)

    async def _run_chunk(
        self,
        b: BoundSource,
        chunk: list[Sample],
        sem: asyncio.Semaphore,
        threads: asyncio.Semaphore,
    ) -> tuple[FloatArray, FloatArray | None, list[str | None]] | str:
        """Run one batch; a string result is the abstain reason for all of it, a
        :class:`_TimedOut` one says the batch ran out of time."""
        if b.runs_inline:
            try:
                out = b.source.score(chunk)
            except FailNow as exc:
                out = [Fail(exc.reason)] * len(chunk)
            except Exception as exc:
                return _describe(exc)
            await asyncio.sleep(0)  # let other sources' batches move between inline batches
            return self._checked(b, out, len(chunk))
        is_async = b.source.is_async()
        async with sem, contextlib.AsyncExitStack() as stack:
            try:
                if is_async:
                    if b.timeout_s:  # this task's context: ascore and its tasks see it
                        _DEADLINE.set(time.monotonic() + b.timeout_s)
                    coro: Any = b.source.ascore(chunk)
                else:
                    await stack.enter_async_context(threads)
                    loop = asyncio.get_running_loop()
                    ctx = contextvars.copy_context()
                    if b.timeout_s:
                        ctx.run(_DEADLINE.set, time.monotonic() + b.timeout_s)
                    coro = loop.run_in_executor(self._executor(), ctx.run, b.source.score, chunk)
                out = await asyncio.wait_for(coro, b.timeout_s) if b.timeout_s else await coro
            except (TimeoutError, asyncio.TimeoutError):
                if not is_async:
                    self._abandon_pool()
                return _TimedOut(f"{TIMEOUT}{b.timeout_s:g}s")
            except FailNow as exc:
                out = [Fail(exc.reason)] * len(chunk)
            except Exception as exc:
                return _describe(exc)
        return self._checked(b, out, len(chunk))

    @staticmethod
    def _checked(
        b: BoundSource, out: Any, m: int
    ) -> tuple[FloatArray, FloatArray | None, list[str | None]] | str:
        try:
            return _to_rows(out, m, len(b.objectives), b.source.fail_values())
        except (ValueError, TypeError) as exc:  # e.g. a string or a dict where a float belongs
            return f"wrong output: {exc}"


class _TimedOut(str):
    """The reason of a batch that ran out of time (which of its samples caused it is unknown)."""


class _LoopThread:
    """An event loop running in a daemon thread for the life of an engine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="rewardhub-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            _close_loop(loop)  # what is left is a call abandoned by its caller

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:  # e.g. KeyboardInterrupt in the waiting thread: stop the work
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed meanwhile
            return
        if not self.is_current():
            # a source stuck in the loop thread (an inline batch still running, e.g. after
            # Ctrl-C) must not hang close(): an idle loop stops in milliseconds, and the thread
            # is a daemon that goes with the process (Ctrl-C must stop a CLI run promptly)
            self._thread.join(timeout=1)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(coro)
    with ThreadPoolExecutor(1) as ex:  # a loop is running in this thread (a notebook, a server)
        return ex.submit(_run_in_new_loop, coro).result()


def _run_in_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` without its per-call costs (signal handler swap, default-executor join:
    about 0.4 ms, a quarter of a cached 10k-sample call), keeping its clean-up of leftovers."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left on ``loop``, finish its async generators and close it."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
