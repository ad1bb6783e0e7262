"""MicroBatcher: gathers concurrent single-sample calls into pipeline batches.

verl, OpenRLHF and HTTP clients score one sample per call, many calls at once. The batcher
holds each call for at most ``window_ms`` (or until ``max_batch`` calls wait), scores them
with one ``pipeline.ascore`` and hands each caller its own :class:`Row`. It runs its own
event loop in a daemon thread, so callers may come from any thread or any event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from rewardhub.errors import RewardHubError, SpecError
from rewardhub.outcome import Outcome
from rewardhub.types import Sample, ScoreResult

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline


#: an outcome code → its Outcome (an enum call per cell costs more than the look-up)
_OUTCOMES = {int(o): o for o in Outcome}


@dataclass(frozen=True)
class Row:
    """One sample's result: the reward vector (NaN = no value), each cell's outcome, the total
    and the reasons."""

    values: dict[str, float]
    total: float
    reasons: dict[str, str] = field(default_factory=dict)
    std: dict[str, float] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    """objective → the id of the source that produced it (to look up its reason in ``reasons``)."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """objective → its cell's outcome (a cell not named here is unscorable when NaN, else a
    value)"""
    unscorable: str | None = None
    """why the total is NaN, when it is (the pipeline's ``diagnostics["unscorable"]``)"""

    @classmethod
    def of(cls, result: ScoreResult, i: int) -> Row:
        return cls.all(result, [i])[0]

    @classmethod
    def all(cls, result: ScoreResult, which: Sequence[int] | None = None) -> list[Row]:
        """The rows of ``result`` (those at ``which``, default every one), the batch's
        arrays read once for all of them."""
        v = result.vector
        idx = range(len(result.total)) if which is None else which
        objectives = v.objectives
        values = v.values.tolist()
        std = None if v.std is None else v.std.tolist()
        totals = result.total.tolist()
        codes = np.asarray(v.outcomes).tolist()
        unscorable = result.diagnostics.get("unscorable", {})
        return [
            cls(
                values=dict(zip(objectives, values[i])),
                total=float(totals[i]),
                reasons=dict(v.reasons[i]),
                std=None if std is None else dict(zip(objectives, std[i])),
                sources=dict(zip(objectives, v.sources)),
                outcomes={o: _OUTCOMES[c] for o, c in zip(objectives, codes[i])},
                unscorable=unscorable.get(i),
            )
            for i in idx
        ]

    def outcome(self, objective: str) -> Outcome:
        """The outcome of ``objective``'s cell."""
        found = self.outcomes.get(objective)
        if found is not None:
            return found
        return Outcome.UNSCORABLE if math.isnan(self.values[objective]) else Outcome.VALUE

    def reason(self, objective: str) -> str | None:
        """Why ``objective`` is not a plain value (None when it is one)."""
        if self.outcome(objective) is Outcome.VALUE:
            return None
        return self.reasons.get(self.sources.get(objective, ""), "abstained")


def batch_relative(pipeline: Pipeline) -> list[str]:
    """The spec parts whose result for a sample depends on the other samples of its batch.

    Under micro-batching the batch is whichever calls shared a window, so such a method would
    give a sample a different reward depending on timing.
    Read from what the normalisers and the aggregator declare (``rowwise``,
    ``Aggregator.batch_relative``), so a plugin declaring itself row-wise works here too.
    """
    found = [f"normalize method {n.method!r}" for n in pipeline.normalizers if not n.rowwise]
    agg = pipeline.aggregator
    why = agg.batch_relative()
    if why is not None:
        found.append(f"aggregate method {agg.method!r} {why}")
    return found


def check_rowwise(pipeline: Pipeline, who: str) -> None:
    """Raise SpecError when ``pipeline`` compares samples within a batch (see batch_relative)."""
    parts = batch_relative(pipeline)
    if parts:
        raise SpecError(
            f"{who} scores samples one call at a time, but this spec uses {', '.join(parts)}, "
            "which compares samples within a batch; its reward would depend on which calls "
            "happened to share a batch. Use a per-sample method (normalize: none, clip or "
            "running; an aggregator without scope, tchebycheff with an 'ideal'), and leave the "
            "group normalisation to the trainer (e.g. verl's GDPO over the objective keys)",
            "normalize" if parts[0].startswith("normalize") else "aggregate",
        )


#: a call's future: a thread-safe one, or (on the caller's loop) that loop's own
_Waiter = Union["cf.Future[Row]", "asyncio.Future[Row]"]
_Item = tuple[Sample, _Waiter]


class MicroBatcher:
    """Score concurrent single-sample calls in shared pipeline batches.

    ``await batcher.submit(sample)`` from any event loop, or ``batcher.submit_sync(sample)``
    from any thread, returns that sample's :class:`Row`. A batch goes out when ``max_batch``
    calls wait or ``window_ms`` after its first call; at most ``max_inflight`` batches run at
    once (later calls keep gathering meanwhile). If a batch raises, each of its samples is
    scored alone, so one caller's error never reaches the others.

    With ``on_caller_loop=True`` it has no thread: it runs on the event loop of its first
    ``submit`` and takes calls from that loop only (the server's, where a thread hop per call
    would cost more than scoring a rule spec); ``close`` must then be called on that loop.

    With ``eager=True`` a batch does not wait out the window: it leaves on the next turn of
    the loop, with every call that arrived together, and the calls that come while it is
    being scored gather for the next one (``max_inflight``). For pipelines whose sources are
    cheap (every one runs inline), where holding a call costs more than the batch saves.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        window_ms: float = 5.0,
        max_batch: int = 64,
        max_inflight: int = 1,
        weights: Mapping[str, float] | None = None,
        allow_batch_relative: bool = False,
        on_batch: Callable[[int], None] | None = None,
        on_caller_loop: bool = False,
        eager: bool = False,
    ) -> None:
        if not window_ms >= 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight}")
        if not allow_batch_relative:
            check_rowwise(pipeline, "MicroBatcher")
        self.pipeline = pipeline
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.weights = weights
        self.on_batch = on_batch
        self.on_caller_loop = on_caller_loop
        self.eager = eager
        self.batch_sizes: list[int] = []
        """The size of every batch sent to the pipeline (for tests and benchmarks; not kept
        when ``on_batch`` is given, so a long-running server does not grow it forever)."""
        self._pending: list[_Item] = []
        self._timer: asyncio.Handle | None = None
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- callers ---------------------------------------------------------------------------

    async def submit(self, sample: Sample) -> Row:
        """Score one sample in the next batch (from any event loop)."""
        if not self.on_caller_loop:
            return await asyncio.wrap_future(self._enqueue(sample))
        # the batch resolves this loop's own future on this loop's thread: no hop, and a
        # caller that gives up cancels it (dropped from its batch if that has not left yet)
        future: asyncio.Future[Row] = self._bind(asyncio.get_running_loop()).create_future()
        self._add(sample, future)
        return await future

    def submit_sync(self, sample: Sample, timeout: float | None = None) -> Row:
        """Score one sample in the next batch, blocking this thread until its row is ready."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("submit_sync blocks; inside the batcher's own loop use submit")
        return self._enqueue(sample).result(timeout)

    def submit_many_sync(
        self, samples: Sequence[Sample], timeout: float | None = None
    ) -> list[Row]:
        """Like :meth:`submit_sync` for several samples at once (they may share a batch)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("submit_many_sync blocks; inside the batcher's own loop use submit")
        futures = [self._enqueue(s) for s in samples]
        return [f.result(timeout) for f in futures]

    def close(self) -> None:
        """Stop the batcher thread; calls still waiting fail with RewardHubError."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if self.on_caller_loop and loop is not None:
            self._shutdown()  # on the caller's loop, which keeps running
            return
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        thread.join(timeout=30)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the batcher's loop ----------------------------------------------------------------

    def _enqueue(self, sample: Sample) -> cf.Future[Row]:
        if not isinstance(sample, Sample):
            raise TypeError(f"submit takes a rewardhub Sample, got {type(sample).__name__}")
        future: cf.Future[Row] = cf.Future()
        self._ensure_loop().call_soon_threadsafe(self._add, sample, future)
        return future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RewardHubError("this MicroBatcher is closed")
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an on_caller_loop MicroBatcher takes calls from one loop only")
        return loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self.on_caller_loop:
            raise RuntimeError("an on_caller_loop MicroBatcher takes calls through submit only")
        with self._lock:
            if self._closed:
                raise RewardHubError("this MicroBatcher is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=run, name="rewardhub-batcher", daemon=True)
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    def _add(self, sample: Sample, future: _Waiter) -> None:
        if self._closed:
            _fail(future, RewardHubError("this MicroBatcher is closed"))
            return
        self._pending.append((sample, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._arm()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and self._inflight < self.max_inflight:
            taken, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            # a caller that gave up (cancelled) before its batch left is dropped here
            live = [item for item in taken if _live(item[1])]
            if live:
                self._inflight += 1
                assert self._loop is not None
                task = self._loop.create_task(self._run(live))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if self._pending and self._timer is None and self._inflight < self.max_inflight:
            self._arm()

    def _arm(self) -> None:
        """Send the pending calls when the window closes (next loop turn when eager)."""
        assert self._loop is not None
        if self.eager:
            self._timer = self._loop.call_soon(self._flush)
        else:
            self._timer = self._loop.call_later(self.window_s, self._flush)

    async def _run(self, items: list[_Item]) -> None:
        try:
            await self._score(items)
        finally:
            self._inflight -= 1
            if not self._closed:
                self._flush()  # calls that gathered while this batch ran go out now

    async def _score(self, items: list[_Item]) -> None:
        if self.on_batch is None:
            self.batch_sizes.append(len(items))
        else:
            self.on_batch(len(items))
        try:
            result = await self.pipeline.ascore([s for s, _ in items], weights=self.weights)
        except asyncio.CancelledError:
            for _, future in items:
                _fail(future, RewardHubError("the MicroBatcher was closed before this call ended"))
            raise
        except Exception as exc:
            if len(items) == 1:
                _fail(items[0][1], exc)
                return
            # find the caller(s) at fault: each sample alone, so the others still get rows
            for item in items:
                await self._score([item])
            return
        for (_, future), row in zip(items, Row.all(result)):
            if not future.done():
                future.set_result(row)

    def _shutdown(self) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        for _, future in self._pending:
            if _live(future):
                _fail(future, RewardHubError("the MicroBatcher was closed before this call ran"))
        self._pending = []
        for task in self._tasks:
            task.cancel()
        if self.on_caller_loop:
            return  # the loop is the caller's
        loop = self._loop

        async def stop() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            loop.stop()

        loop.create_task(stop())


def _live(future: _Waiter) -> bool:
    """Whether the call still waits (a cancelled one is dropped); a thread-safe future is
    marked running, so that it can no longer be cancelled."""
    if isinstance(future, cf.Future):
        return future.set_running_or_notify_cancel()
    return not future.cancelled()


def _fail(future: _Waiter | cf.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
