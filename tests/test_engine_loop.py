"""Issue #9, Engine: one event loop per pipeline, thread-safe caches, picklable pipelines."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import rewardhub as rh
from rewardhub.testing import plugin_with
from tests import pickle_plugin


def S(completion: str) -> rh.Sample:
    return rh.Sample(prompt="p", completion=completion)


class LoopBound(rh.RewardSource):
    """An async judge that makes its HTTP client and semaphore on first use and keeps them,
    as an OpenAI or httpx-based judge does (both are bound to the loop they were made on)."""

    type = "loop-bound"
    objectives = ("judged",)

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self.loops: set[int] = set()

    async def ascore(self, samples: list[rh.Sample]) -> rh.Scores:
        if self._client is None:
            transport = httpx.MockTransport(
                lambda req: httpx.Response(200, json={"score": len(req.content)})
            )
            self._client = httpx.AsyncClient(transport=transport, base_url="http://judge")
            self._sem = asyncio.Semaphore(2)
        assert self._sem is not None
        self.loops.add(id(asyncio.get_running_loop()))
        out = []
        for s in samples:
            async with self._sem:
                r = await self._client.post("/score", content=s.completion.encode())
                out.append([float(r.json()["score"])])
        return out

    def close(self) -> None:
        self._client = None


def loop_pipe() -> rh.Pipeline:
    hub = rh.Hub(plugins=[plugin_with(LoopBound)], entry_points=False)
    spec = {"sources": [{"type": "loop-bound", "batch_size": 1}], "cache": {"memory_items": 0}}
    return rh.Pipeline(spec, hub=hub)


def test_async_source_state_survives_from_call_to_call() -> None:
    with loop_pipe() as p:
        for i in range(3):
            res = p.score([S("ab" * (i + 1)), S("x")])
            assert res.vector.values.ravel().tolist() == [2.0 * (i + 1), 1.0], res.vector.reasons
        src = p.engine.sources[0].source
        assert isinstance(src, LoopBound) and len(src.loops) == 1


def test_ascore_from_a_running_loop_and_score_from_inside_one() -> None:
    async def main(p: rh.Pipeline) -> list[float]:
        a = await p.ascore([S("abc")])  # FastAPI / Jupyter: awaited on the caller's loop
        b = await p.ascore([S("abcd")])
        c = p.score([S("ab")])  # a sync call under a running loop (a notebook cell)
        d = await asyncio.gather(p.ascore([S("a")]), p.ascore([S("abcde")]))
        return [*a.total, *b.total, *c.total, *(x.total[0] for x in d)]

    with loop_pipe() as p:
        assert asyncio.run(main(p)) == [3.0, 4.0, 2.0, 1.0, 5.0]
        assert asyncio.run(main(p)) == [3.0, 4.0, 2.0, 1.0, 5.0]  # a second caller loop
        src = p.engine.sources[0].source
        assert isinstance(src, LoopBound) and len(src.loops) == 1


def test_close_stops_the_loop_thread() -> None:
    p = loop_pipe()
    p.score([S("a")])
    assert any(t.name == "rewardhub-loop" for t in threading.enumerate())
    loop = p.engine._loop
    assert loop is not None
    p.close()
    assert loop.loop.is_closed()
    with pytest.raises(rh.RewardHubError, match="closed"):
        asyncio.run(p.ascore([S("a")]))


# -- threads -------------------------------------------------------------------------------------


def test_memory_cache_under_eight_threads() -> None:
    """Issue #9: KeyError from move_to_end once the LRU was half full (47 of 1,200 calls)."""
    spec = {
        "sources": [
            {"type": "length"},
            {"type": "python", "config": {"function": "tests.helpers:word_count"}},
        ],
        "cache": {"memory_items": 64},
    }
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as p:

            def work(seed: int) -> None:
                rng = np.random.default_rng(seed)
                for _ in range(40):
                    batch = [S("w " * int(k)) for k in rng.integers(0, 120, size=16)]
                    res = p.score(batch)
                    assert res.vector.column("python").tolist() == [
                        float(len(s.completion.split())) for s in batch
                    ]

            with ThreadPoolExecutor(8) as ex:
                list(ex.map(work, range(8)))  # re-raises any error of a thread
    finally:
        sys.setswitchinterval(old)


def test_memory_cache_itself_is_thread_safe() -> None:
    from rewardhub.cache import MemoryCache

    cache = MemoryCache(50)
    row = np.zeros(1).tobytes()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:

        def hammer(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(600):
                keys = [int(k) for k in rng.integers(0, 120, size=20)]
                cache.get_many(keys)
                cache.put_many(keys, [row] * len(keys))

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(hammer, range(8)))
    finally:
        sys.setswitchinterval(old)
    assert len(cache) <= 50


# -- pickling ------------------------------------------------------------------------------------


def _score_in_child(pipe: rh.Pipeline) -> tuple[list[list[float]], int]:
    with pipe:
        res = pipe.score([S("abc"), S("hello")])
    return res.vector.values.tolist(), os.getpid()


def test_pipeline_ships_through_a_spawned_process_pool(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text("def f(s):\n    return 7.0\n")
    (tmp_path / "spec.yaml").write_text(
        "sources:\n"
        "  - type: pid-length\n"
        "  - type: python\n"
        "    config: {function: fn.py:f, objectives: [seven]}\n"  # relative to the spec
        "normalize: running\n"
    )
    hub = rh.Hub(plugins=[pickle_plugin], entry_points=False)
    with rh.Pipeline.from_yaml(tmp_path / "spec.yaml", hub=hub) as pipe:
        pipe.score([S("warm up the running statistics")])
        state = pipe.state_dict()
        clone = pickle.loads(pickle.dumps(pipe))
        assert clone.state_dict() == state and clone.objectives == pipe.objectives
        clone.close()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            values, child = pool.submit(_score_in_child, pipe).result(timeout=120)
    assert child != os.getpid()
    assert [row[0] for row in values] == [3.0, 5.0] and [row[2] for row in values] == [7.0] * 2
    assert values[0][1] == float(child)  # scored over there


def test_score_waits_for_slow_calls_without_blocking_other_threads() -> None:
    """Calls from several threads share the loop and run concurrently on it."""

    class Nap(rh.RewardSource):
        type = "nap-async"
        objectives = ("nap",)

        async def ascore(self, samples: list[rh.Sample]) -> rh.Scores:
            await asyncio.sleep(0.2)
            return [[1.0] for _ in samples]

    hub = rh.Hub(plugins=[plugin_with(Nap)], entry_points=False)
    with rh.Pipeline({"sources": [{"type": "nap-async"}]}, hub=hub) as p:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            totals = list(ex.map(lambda i: p.score([S(str(i))]).total[0], range(4)))
        assert totals == [1.0] * 4
        assert time.perf_counter() - t0 < 0.7  # not four naps in a row
