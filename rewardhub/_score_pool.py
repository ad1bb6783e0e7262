"""``rewardhub score --workers N``: chunks scored in worker processes, written in input order.

Cheap sources (rules, regexes: ``inline``) cost about as much per line as reading, parsing
and encoding the line, all pure Python under one GIL; worker processes put every core to
work. The parent reads lines and writes output; each worker builds the same pipeline from
the spec file and runs :func:`~rewardhub._score_stream.score_chunk` on whole chunks, so the
output is byte for byte what one process writes. That holds only for a pipeline whose
result for a chunk does not depend on the chunks before it: every source inline (no disk
cache, no model to load twice), and no normaliser or aggregator keeping state across calls
(``running``): :func:`why_not_parallel` says which part stops it.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from rewardhub._score_stream import ChunkDone, Line, Scorer, StreamOptions, score_chunk
from rewardhub._spec_file import load_pipeline
from rewardhub.aggregate.base import Aggregator, Normalizer
from rewardhub.default_plugins import DEFAULT_PLUGINS
from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline

#: inputs smaller than this are scored in one process unless --workers asks: starting the
#: workers (an interpreter and the pipeline each, ~0.5 s) costs more than they save
AUTO_MIN_BYTES = 8 << 20


def auto_workers() -> int:
    """Workers for ``--workers 0``: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _keeps_state(part: Normalizer | Aggregator) -> bool:
    """A part that saves state (overrides ``state_dict``) may carry it from chunk to chunk;
    a gate or wrapper keeps state when what it wraps does."""
    base = getattr(part, "base", None)
    if isinstance(base, (Normalizer, Aggregator)):
        return _keeps_state(base)
    kind = Normalizer if isinstance(part, Normalizer) else Aggregator
    return type(part).state_dict is not kind.state_dict


def why_not_parallel(pipe: Pipeline) -> str | None:
    """Why chunks of this pipeline cannot be scored in separate processes (None: they can)."""
    if pipe.spec.cache.cheap_sources:
        return "cheap sources are kept in the disk cache (--cache-cheap)"
    for bound in pipe.engine.sources:
        if not bound.source.inline:
            return (
                f"source {bound.id!r} is not a cheap inline source (a model, judge or "
                "service: it runs its own threads and would be loaded once per worker)"
            )
    parts: list[Normalizer | Aggregator] = [*pipe.normalizers, pipe.aggregator]
    for part in parts:
        if _keeps_state(part):
            return f"{part.method!r} keeps state from one chunk to the next"
    return None


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs to build the parent's pipeline."""

    spec: Path
    input: Path
    cache_path: Path | None
    memory_items: int | None
    aggregate: str | None
    opts: StreamOptions


_worker: tuple[Pipeline, WorkerJob] | None = None


def _start_worker(job: WorkerJob) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    warnings.simplefilter("ignore")  # the parent has already shown the hub's warnings
    pipe = load_pipeline(job.spec, Hub(), job.cache_path, memory_items=job.memory_items)
    if job.aggregate:
        pipe = pipe.with_aggregator(job.aggregate)
    _worker = (pipe, job)


def _score(chunk: list[Line]) -> ChunkDone:
    assert _worker is not None, "the worker was not started"
    pipe, job = _worker
    return score_chunk(pipe, chunk, job.input, job.opts)


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fresh single-threaded server that has imported the package and
    its built-in plugins once (this process has threads, so it is never forked itself);
    spawned where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, *DEFAULT_PLUGINS])
    return context


def pool_scorer(job: WorkerJob, workers: int, fallback: Pipeline) -> Scorer:
    """A scorer for :func:`~rewardhub._score_stream.stream` that keeps ``2 × workers``
    chunks in flight and writes them in order. If the pool breaks (a worker killed), the
    chunks not yet written are scored here with ``fallback``."""

    def scorer(chunks: Iterator[list[Line]], write: Callable[[ChunkDone], None]) -> None:
        context = _context()
        pending: collections.deque[tuple[list[Line], Future[ChunkDone]]] = collections.deque()
        pool = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(job,))

        def write_first() -> None:
            done = pending[0][1].result()  # the chunk stays pending until it is written
            pending.popleft()
            write(done)

        try:
            for chunk in chunks:
                pending.append((chunk, pool.submit(_score, chunk)))
                while len(pending) >= 2 * workers:
                    write_first()
            while pending:
                write_first()
        except BrokenProcessPool:
            warnings.warn(
                "a scoring worker process died; the rest of the input is scored in this process",
                RuntimeWarning,
                stacklevel=1,
            )
            for chunk in itertools.chain([c for c, _ in pending], chunks):
                write(score_chunk(fallback, chunk, job.input, job.opts))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    return scorer
