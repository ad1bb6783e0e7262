"""The scoring engine: batching, dedup, caching, concurrency, time-outs and outcomes.

A source that raises or returns the wrong output abstains (NaN, *unscorable*, with the reason
in ``RewardBatch.reasons``) for the samples it was scoring; a sample that times out on its own
is a failed check. The outcome of every cell is recorded as a code from the typed result the
source gave (see :mod:`rewardhub.outcome`), never from its reason. Nothing yields a silent 0,
no sample is lost, and an abstention is never cached. All calls of one engine run on its own
event loop (a thread started on first use), so async sources may keep loop-bound state
(semaphores, HTTP clients) from one call to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rewardhub import _trace
from rewardhub._loop import LoopThread, run_sync
from rewardhub._threads import DaemonThreadPool
from rewardhub.cache import DiskCache, Entry, MemoryCache, pack_rows, unpack_rows
from rewardhub.cache_key import source_cache_key
from rewardhub.errors import RewardHubError
from rewardhub.outcome import Fail, FailNow, Outcome, cell_outcomes
from rewardhub.rows import FAILED, Rows, describe, to_rows
from rewardhub.source import _DEADLINE, RewardSource
from rewardhub.types import FloatArray, RewardBatch, Sample, SampleKey
from rewardhub.when import Condition

__all__ = ["BoundSource", "Engine", "EngineStats", "run_sync"]

TIMEOUT = "timeout after "
#: the reason of a cell routed away by ``when:``
ROUTED_AWAY = "not applicable"


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
            self.cache_key = source_cache_key(self.source)

    @property
    def runs_inline(self) -> bool:
        """Batches run in the event-loop thread (see ``RewardSource.inline``)."""
        return self.source.inline and not self.source.is_async() and self.timeout_s is None


@dataclass
class EngineStats:
    """Counters since the engine was made (for benchmarks, metrics and ``--resume`` reports)."""

    calls: int = 0
    computed: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    deduplicated: int = 0
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """per source id, the number of sample rows of each kind that is not a value
    (``not applicable``, ``failed``, ``unscorable``)"""
    seconds: dict[str, float] = field(default_factory=dict)
    """wall time spent per source id (cache look-ups included), for the server's metrics"""

    def count(self, source: str, codes: npt.NDArray[np.int8]) -> None:
        odd = codes[codes != Outcome.VALUE]
        if odd.size:
            mine = self.outcomes.setdefault(source, {})
            for code, n in zip(*np.unique(odd, return_counts=True)):
                label = Outcome(int(code)).label
                mine[label] = mine.get(label, 0) + int(n)


@dataclass(repr=False)  # a repr of 10k rows is never wanted (asyncio formats task results)
class _Result:
    """One source's output over the unique samples of a call."""

    values: FloatArray
    std: FloatArray | None
    reasons: list[str | None]
    outcomes: npt.NDArray[np.int8]


class _TimedOut(str):
    """The reason of a batch that ran out of time (which of its samples caused it is unknown)."""


#: what one batch gave: checked rows, an abstain reason for all of it, or a time-out
_Chunk = Rows | str


def _cacheable(rows: Rows) -> list[bool]:
    """Which rows may be replayed from a cache: values with no NaN, failed checks (a verdict
    on the content) and not-applicable rows. Abstentions (the machinery failed) are
    recomputed on the next call."""
    nan = np.isnan(rows.values).any(axis=1)
    keep = (rows.codes != Outcome.UNSCORABLE) & ~((rows.codes == Outcome.VALUE) & nan)
    return keep.tolist()  # type: ignore[no-any-return]


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
        self._loop: LoopThread | None = None
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

    # -- one call ----------------------------------------------------------------------------

    def _runner(self) -> LoopThread:
        with self._pool_lock:
            if self._closed:
                raise RewardHubError(
                    "this pipeline is closed; build a new one (Pipeline.from_spec / from_yaml) "
                    "to score again"
                )
            if self._loop is None:
                self._loop = LoopThread()
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

    def _assemble(self, results: list[_Result], inv: Any) -> RewardBatch:
        n = len(inv)
        if results:
            values = np.concatenate([r.values for r in results], axis=1)[inv]
            outcomes = np.concatenate([r.outcomes for r in results], axis=1)[inv]
        else:
            values, outcomes = np.zeros((n, 0)), np.zeros((n, 0), dtype=np.int8)
        std = None
        if any(r.std is not None for r in results):
            std = np.concatenate(
                [r.std if r.std is not None else np.full_like(r.values, math.nan) for r in results],
                axis=1,
            )[inv]
        reasons: list[dict[str, str]] = [{} for _ in range(n)]
        for b, r in zip(self.sources, results):
            if any(r.reasons):
                for i, u in enumerate(inv.tolist()):
                    reason = r.reasons[u]
                    if reason is not None:
                        reasons[i][b.id] = reason
        sources = tuple(b.id for b in self.sources for _ in b.objectives)
        return RewardBatch(values, self.objectives, std, tuple(reasons), sources, outcomes)

    # -- one source --------------------------------------------------------------------------

    async def _run_source(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        threads: asyncio.Semaphore,
    ) -> _Result:
        t0 = time.perf_counter()
        u, k = len(samples), len(b.objectives)
        acc = _Accumulator(u, k)
        todo = self._route(b, samples, acc)
        if b.cache and todo:
            todo = self._from_cache(b, samples, keys, todo, acc)
        if todo:
            await self._compute(b, samples, keys, todo, threads, acc)
        self.stats.count(b.id, acc.codes)
        elapsed = time.perf_counter() - t0
        self.stats.seconds[b.id] = self.stats.seconds.get(b.id, 0.0) + elapsed
        if self._trace:
            _trace.source_timing(b.id, b.source.type, u, elapsed)
        return _Result(acc.values, acc.std, acc.reasons, cell_outcomes(acc.codes, acc.values))

    @staticmethod
    def _route(b: BoundSource, samples: list[Sample], acc: _Accumulator) -> list[int]:
        """The rows ``b`` applies to; the others are marked not applicable (``when:``)."""
        if b.when is None:
            return list(range(len(samples)))
        todo = []
        for i, s in enumerate(samples):
            if b.when(s):
                todo.append(i)
            else:
                acc.codes[i], acc.reasons[i] = Outcome.NOT_APPLICABLE, ROUTED_AWAY
        return todo

    def _from_cache(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        todo: list[int],
        acc: _Accumulator,
    ) -> list[int]:
        """Fill the rows found in the memory or disk cache; return the rows still to compute."""
        u = len(samples)
        mem = self._memory[b.cache_key]
        hits = mem.get_many(keys if len(todo) == u else [keys[i] for i in todo])
        n_miss = hits.count(None)
        if n_miss == len(hits):  # a cold call: no scan needed
            missing = todo
        else:
            missing = [i for i, e in zip(todo, hits) if e is None] if n_miss else []
        if not missing:
            acc.place(todo, hits)  # type: ignore[arg-type]  # every entry is present
        elif len(missing) < len(todo):
            found = [(i, e) for i, e in zip(todo, hits) if e is not None]
            acc.place([i for i, _ in found], [e for _, e in found])
        self.stats.memory_hits += len(todo) - len(missing)
        if missing and self.disk is not None and b.disk:
            digests = [samples[i].digest for i in missing]
            on_disk = self.disk.get_many(b.cache_key, digests)
            hit_idx = [i for i, d in zip(missing, digests) if d in on_disk]
            hit_entries = [on_disk[d] for d in digests if d in on_disk]
            acc.place(hit_idx, hit_entries)
            mem.put_many([keys[i] for i in hit_idx], hit_entries)
            self.stats.disk_hits += len(hit_idx)
            missing = [i for i, d in zip(missing, digests) if d not in on_disk]
        return missing

    async def _compute(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        todo: list[int],
        threads: asyncio.Semaphore,
        acc: _Accumulator,
    ) -> None:
        """Score the rows ``todo`` in batches, write them into ``acc`` and cache them."""
        u, k = len(samples), len(b.objectives)
        sem = asyncio.Semaphore(b.concurrency)
        size = b.batch_size
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        # the common case, every row to compute: address each chunk by a slice, which is
        # cheaper than gathering and scattering by index
        whole = len(todo) == u
        rows: list[Any] = [slice(c[0], c[-1] + 1) if whole else c for c in chunks]
        outs: list[_Chunk] = await asyncio.gather(
            *(
                self._run_chunk(b, samples[r] if whole else [samples[i] for i in r], sem, threads)
                for r in rows
            )
        )
        self.stats.computed += len(todo)
        # a time-out is attributable only per sample: re-run the samples of a batch that
        # timed out one by one (same time-out each, within the source's concurrency), so
        # the completion that causes it fails its check and the others get their values
        again = [
            i for c, o in zip(chunks, outs) if isinstance(o, _TimedOut) and len(c) > 1 for i in c
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
        fails = np.asarray(b.source.fail_values(), dtype=np.float64).reshape(1, k)
        for chunk, r, out in zip(chunks, rows, outs):
            if isinstance(out, _TimedOut):  # one sample, alone: it caused the time-out
                codes = np.array([Outcome.FAILED], dtype=np.int8)
                acc.write(chunk, r, Rows(fails.copy(), None, [FAILED + out], codes))
                continue  # a time-out depends on the machine's load: never cached
            if isinstance(out, str):  # the whole chunk abstained: never cached
                acc.abstain(chunk, out)
                continue
            acc.write(chunk, r, out)
            if b.cache:
                self._store(b, samples, keys, chunk, r if whole else chunk, out)

    def _store(
        self,
        b: BoundSource,
        samples: list[Sample],
        keys: list[SampleKey],
        chunk: list[int],
        r: Any,
        out: Rows,
    ) -> None:
        """Cache a computed chunk, leaving out what may not be replayed (see _cacheable)."""
        packed = pack_rows(out.values)
        clean = out.std is None and not out.codes.any() and out.reasons.count(None) == len(chunk)
        entries: list[Entry] = (
            packed  # type: ignore[assignment]
            if clean
            else list(
                zip(
                    packed,
                    [None] * len(chunk) if out.std is None else pack_rows(out.std),
                    out.reasons,
                    out.codes.tolist(),
                )
            )
        )
        chunk_keys: list[SampleKey] = keys[r] if isinstance(r, slice) else [keys[i] for i in chunk]
        if not clean:
            ok = [j for j, keep in enumerate(_cacheable(out)) if keep]
            if len(ok) < len(chunk):
                entries = [entries[j] for j in ok]
                chunk_keys = [chunk_keys[j] for j in ok]
                chunk = [chunk[j] for j in ok]
        self._memory[b.cache_key].put_many(chunk_keys, entries)
        if self.disk is not None and b.disk:
            self.disk.put_many(b.cache_key, [samples[i].digest for i in chunk], entries)

    # -- one batch ---------------------------------------------------------------------------

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

    async def _run_chunk(
        self,
        b: BoundSource,
        chunk: list[Sample],
        sem: asyncio.Semaphore,
        threads: asyncio.Semaphore,
    ) -> _Chunk:
        """Run one batch; a string result is the abstain reason for all of it, a
        :class:`_TimedOut` one says the batch ran out of time."""
        if b.runs_inline:
            try:
                out = b.source.score(chunk)
            except FailNow as exc:
                out = [Fail(exc.reason)] * len(chunk)
            except Exception as exc:
                return describe(exc)
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
                return describe(exc)
        return self._checked(b, out, len(chunk))

    @staticmethod
    def _checked(b: BoundSource, out: Any, m: int) -> _Chunk:
        try:
            return to_rows(out, m, len(b.objectives), b.source.fail_values())
        except (ValueError, TypeError) as exc:  # e.g. a string or a dict where a float belongs
            return f"wrong output: {exc}"


class _Accumulator:
    """One source's rows over the unique samples of a call, filled from caches and batches."""

    def __init__(self, u: int, k: int) -> None:
        self.u, self.k = u, k
        self.values = np.full((u, k), math.nan)
        self.std: FloatArray | None = None
        self.reasons: list[str | None] = [None] * u
        self.codes = np.zeros(u, dtype=np.int8)

    def _std(self) -> FloatArray:
        if self.std is None:
            self.std = np.full((self.u, self.k), math.nan)
        return self.std

    def place(self, idx: list[int], entries: Sequence[Entry]) -> None:
        """Write cached entries into rows ``idx`` (one numpy assignment)."""
        if not idx:
            return
        # idx is increasing, so a full-length idx is every row: a plain slice assignment
        rows: Any = slice(None) if len(idx) == self.u else idx
        try:  # the common case: plain rows, no std, no outcome (joined in C)
            self.values[rows] = unpack_rows(entries, self.k)  # type: ignore[arg-type]
            return
        except TypeError:  # some entries are (row, std, reason, outcome) tuples
            self.values[rows] = unpack_rows(
                [e if isinstance(e, bytes) else e[0] for e in entries], self.k
            )
        for i, e in zip(idx, entries):
            if isinstance(e, bytes):
                continue
            self.reasons[i], self.codes[i] = e[2], e[3]
            if e[1] is not None:
                self._std()[i] = np.frombuffer(e[1])

    def write(self, chunk: list[int], r: Any, out: Rows) -> None:
        """Write a computed batch into rows ``r`` (a slice or the indices ``chunk``)."""
        self.values[r] = out.values
        if out.std is not None:
            self._std()[r] = out.std
        if out.codes.any() or out.reasons.count(None) < len(chunk):
            self.codes[r] = out.codes
            for i, reason in zip(chunk, out.reasons):
                self.reasons[i] = reason

    def abstain(self, chunk: list[int], reason: str) -> None:
        for i in chunk:
            self.reasons[i], self.codes[i] = reason, Outcome.UNSCORABLE
