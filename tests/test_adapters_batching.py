"""rewardhub.batching.MicroBatcher: concurrent single-sample calls in shared batches."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.batching import MicroBatcher, batch_relative
from tests import adapters_support as sup


def sample(i: int, completion: str | None = None) -> rh.Sample:
    return rh.Sample(prompt="p", completion=completion or f"it is {i}.", reference=str(i))


async def gather(batcher: MicroBatcher, samples: list[rh.Sample]) -> list[Any]:
    return await asyncio.gather(*(batcher.submit(s) for s in samples), return_exceptions=True)


def test_each_caller_gets_its_own_row_in_shared_batches() -> None:
    with sup.pipeline(delay_s=0.005) as pipe, MicroBatcher(pipe, window_ms=20, max_batch=16) as b:
        samples = [sample(i, f"{i}?" if i % 5 == 0 else None) for i in range(50)]
        rows = asyncio.run(gather(b, samples))
    assert b.batch_sizes == sup.Recorder.batches
    assert sum(b.batch_sizes) == 50 and max(b.batch_sizes) <= 16 and len(b.batch_sizes) <= 5
    for i, row in enumerate(rows):
        assert row.values["correct"] == 1.0  # its own reference, not a neighbour's
        assert row.values["style"] == float(i % 5 != 0)
        if i % 5 == 0:
            assert math.isnan(row.values["judge"]) and row.reason("judge") == "judge did not answer"
        else:
            assert row.reason("judge") is None and row.reasons == {}


def test_same_as_scoring_alone() -> None:
    samples = [sample(i, "x" * i + ("?" if i % 3 == 0 else ".")) for i in range(12)]
    with sup.pipeline() as pipe, MicroBatcher(pipe, window_ms=10) as b:
        rows = asyncio.run(gather(b, samples))
        alone = [pipe.score([s]) for s in samples]
    for row, res in zip(rows, alone):
        assert row.total == pytest.approx(float(res.total[0]), nan_ok=True)
        assert list(row.values.values()) == pytest.approx(
            res.vector.values[0].tolist(), nan_ok=True
        )


def test_window_holds_a_lone_call_and_max_batch_does_not_wait() -> None:
    with sup.pipeline() as pipe, MicroBatcher(pipe, window_ms=150, max_batch=4) as b:
        t = time.perf_counter()
        b.submit_sync(sample(1))
        lone = time.perf_counter() - t
        t = time.perf_counter()
        asyncio.run(gather(b, [sample(i) for i in range(4)]))
        full = time.perf_counter() - t
    assert lone >= 0.14
    assert full < 0.14  # four calls filled the batch: it left without waiting the window
    assert b.batch_sizes == [1, 4]


def test_calls_arriving_while_a_batch_runs_form_the_next_one() -> None:
    with sup.pipeline(delay_s=0.05) as pipe, MicroBatcher(pipe, window_ms=1, max_batch=4) as b:
        rows = asyncio.run(gather(b, [sample(i) for i in range(10)]))
    assert all(not isinstance(r, BaseException) for r in rows)
    assert b.batch_sizes == [4, 4, 2]


def test_threads_and_loops_share_one_batcher() -> None:
    with sup.pipeline(delay_s=0.01) as pipe, MicroBatcher(pipe, window_ms=30) as b:
        out: dict[int, Any] = {}

        def worker(i: int) -> None:
            out[i] = b.submit_sync(sample(i))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = b.submit_many_sync([sample(i) for i in range(3)])
    assert all(out[i].values["correct"] == 1.0 for i in range(12))
    assert len(b.batch_sizes) < 12 and [r.values["correct"] for r in rows] == [1.0] * 3


def test_an_error_reaches_only_the_caller_at_fault() -> None:
    with sup.pipeline(on_abstain="fail") as pipe, MicroBatcher(pipe, window_ms=20) as b:
        samples = [sample(i, "why?" if i == 3 else None) for i in range(6)]
        rows = asyncio.run(gather(b, samples))
    assert isinstance(rows[3], rh.AbstainError)
    assert all(rows[i].values["correct"] == 1.0 for i in range(6) if i != 3)
    assert b.batch_sizes[0] == 6 and sorted(b.batch_sizes[1:]) == [1] * 6


def test_no_hang_when_the_pipeline_raises() -> None:
    with sup.pipeline() as pipe:

        async def broken(samples: Any, **kw: Any) -> Any:
            raise RuntimeError("pipeline exploded")

        pipe.ascore = broken  # type: ignore[method-assign]
        with MicroBatcher(pipe, window_ms=5) as b:
            rows = asyncio.run(asyncio.wait_for(gather(b, [sample(i) for i in range(5)]), 10))
            with pytest.raises(RuntimeError, match="exploded"):
                b.submit_sync(sample(9), timeout=10)
    assert all(isinstance(r, RuntimeError) for r in rows)


def test_a_cancelled_call_leaves_the_batch_and_the_others_go_on() -> None:
    with sup.pipeline() as pipe, MicroBatcher(pipe, window_ms=200) as b:

        async def run() -> list[Any]:
            tasks = [asyncio.ensure_future(b.submit(sample(i))) for i in range(5)]
            await asyncio.sleep(0.02)
            tasks[2].cancel()
            return await asyncio.gather(*tasks, return_exceptions=True)

        rows = asyncio.run(run())
    assert isinstance(rows[2], asyncio.CancelledError)
    assert b.batch_sizes == [4]
    assert [r.values["correct"] for i, r in enumerate(rows) if i != 2] == [1.0] * 4


def test_close_fails_waiting_calls_and_later_ones() -> None:
    with sup.pipeline() as pipe:
        b = MicroBatcher(pipe, window_ms=10_000)

        async def run() -> Any:
            task = asyncio.ensure_future(b.submit(sample(1)))
            await asyncio.sleep(0.02)
            await asyncio.to_thread(b.close)
            return await asyncio.gather(task, return_exceptions=True)

        (result,) = asyncio.run(run())
        assert isinstance(result, rh.RewardHubError) and "closed" in str(result)
        with pytest.raises(rh.RewardHubError, match="closed"):
            b.submit_sync(sample(2))


def test_settings_and_batch_relative_specs_are_checked() -> None:
    with sup.pipeline() as pipe:
        for kw, match in [
            ({"window_ms": -1}, "window_ms"),
            ({"max_batch": 0}, "max_batch"),
            ({"max_inflight": 0}, "max_inflight"),
        ]:
            with pytest.raises(ValueError, match=match):
                MicroBatcher(pipe, **kw)
        with pytest.raises(TypeError, match="rewardhub Sample"):
            MicroBatcher(pipe).submit_sync({"completion": "x"})  # type: ignore[arg-type]
    with sup.pipeline({"method": "tchebycheff"}) as pipe:
        assert batch_relative(pipe) == [
            "aggregate method 'tchebycheff' without an 'ideal' (uses the batch's best)"
        ]
        with pytest.raises(rh.SpecError, match="compares samples within a batch"):
            MicroBatcher(pipe)
        MicroBatcher(pipe, allow_batch_relative=True).close()
    with sup.pipeline(
        {"method": "tchebycheff", "ideal": {"correct": 1, "style": 1, "judge": 1}}
    ) as pipe:
        assert batch_relative(pipe) == []
    with sup.pipeline(normalize={"method": "group"}) as pipe:
        assert batch_relative(pipe) == ["normalize method 'group'"]


def test_on_caller_loop_batches_on_the_callers_loop_without_a_thread() -> None:
    with sup.pipeline() as pipe:
        b = MicroBatcher(pipe, window_ms=500, max_batch=16, on_caller_loop=True)
        samples = [sample(i) for i in range(40)]

        async def run() -> tuple[list[Any], list[Any]]:
            rows = await gather(b, samples)
            # a caller that gives up before its batch leaves is dropped from it
            waiting = asyncio.ensure_future(b.submit(sample(99)))
            await asyncio.sleep(0)
            waiting.cancel()
            late = await gather(b, [sample(100)])
            b.close()  # on the caller's loop, which keeps running
            after = await gather(b, [sample(101)])
            return rows, [*late, *after]

        rows, (late, after) = asyncio.run(run())
    assert b._thread is None  # no thread of its own
    assert [r.values["correct"] for r in rows] == [1.0] * 40
    assert sum(b.batch_sizes) == 41 and max(b.batch_sizes) <= 16
    assert late.values["correct"] == 1.0
    assert isinstance(after, rh.RewardHubError) and "closed" in str(after)


def test_on_caller_loop_takes_one_loop_only() -> None:
    with sup.pipeline() as pipe:
        b = MicroBatcher(pipe, window_ms=1, on_caller_loop=True)
        asyncio.run(b.submit(sample(1)))
        with pytest.raises(RuntimeError, match="one loop only"):
            asyncio.run(b.submit(sample(2)))
        with pytest.raises(RuntimeError, match="through submit only"):
            b.submit_sync(sample(3))


def test_eager_batches_leave_on_the_next_loop_turn_without_the_window() -> None:
    with sup.pipeline() as pipe:
        # an hour's window: an eager batcher never arms it
        b = MicroBatcher(pipe, window_ms=3_600_000, max_batch=8, on_caller_loop=True, eager=True)

        async def run() -> list[Any]:
            loop = asyncio.get_running_loop()

            def no_window(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError("an eager batcher waited for the window")

            loop.call_later = no_window  # type: ignore[method-assign]
            together = await gather(b, [sample(i) for i in range(20)])
            alone = await gather(b, [sample(20)])
            b.close()
            return [*together, *alone]

        rows = asyncio.run(run())
    assert [r.values["correct"] for r in rows] == [1.0] * 21
    # calls that arrive together share batches (at most max_batch), a lone call goes alone
    assert b.batch_sizes == [8, 8, 4, 1]
