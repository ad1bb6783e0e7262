from __future__ import annotations

import asyncio
import math
import threading
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewardhub as rh
from rewardhub.testing import check_source, plugin_with

CALLS: list[int] = []


@rh.reward_source("counting", objectives=["count"], batched=True)
def counting(samples: list[rh.Sample]) -> list[list[float]]:
    CALLS.append(len(samples))
    return [[float(len(s.completion))] for s in samples]


@rh.reward_source("boom")
def boom(sample: rh.Sample) -> float:
    raise ValueError("model exploded")


@rh.reward_source("wrong-shape", objectives=["a", "b"], batched=True)
def wrong_shape(samples: list[rh.Sample]) -> list[list[float]]:
    return [[1.0] for _ in samples]


@rh.reward_source("too-few", batched=True)
def too_few(samples: list[rh.Sample]) -> list[list[float]]:
    return [[1.0]] * (len(samples) - 1)


@rh.reward_source("slow")
def slow(sample: rh.Sample) -> float:
    if "slow" in sample.completion:
        time.sleep(2)
    return 1.0


@rh.reward_source("picky", objectives=["x", "y"])
def picky(sample: rh.Sample) -> list[float | None] | rh.Abstain | None:
    if sample.completion == "none":
        return None
    if sample.completion == "why":
        return rh.Abstain("no reference answer")
    if sample.completion == "half":
        return [1.0, None]
    return [1.0, 2.0]


@rh.reward_source("inf")
def infinite(sample: rh.Sample) -> float:
    return math.inf


class AsyncJudge(rh.RewardSource):
    """Counts how many of its calls overlap."""

    type = "async-judge"
    objectives = ("judge",)
    active = 0
    peak = 0

    async def ascore(self, samples: list[rh.Sample]) -> rh.Scores:
        cls = type(self)
        cls.active += 1
        cls.peak = max(cls.peak, cls.active)
        await asyncio.sleep(0.05)
        cls.active -= 1
        return [[1.0] for _ in samples]


def hub() -> rh.Hub:
    return rh.Hub(
        plugins=[
            plugin_with(counting, boom, wrong_shape, too_few, slow, picky, infinite, AsyncJudge)
        ],
        entry_points=False,
    )


def S(c: str, p: str = "p") -> rh.Sample:
    return rh.Sample(prompt=p, completion=c)


def pipe(*sources: dict, **spec: object) -> rh.Pipeline:
    return rh.Pipeline({"sources": list(sources), **spec}, hub=hub())


def test_raise_abstains_with_reason_and_other_sources_still_score() -> None:
    with pipe({"type": "boom"}, {"type": "counting"}) as p:
        res = p.score([S("ab"), S("abc")])
    assert np.isnan(res.vector.column("boom")).all()
    assert res.vector.column("count").tolist() == [2.0, 3.0]
    assert res.vector.reasons[0]["boom"] == "error: ValueError: model exploded"
    # the default on_abstain (unscorable): a sample the machinery could not score has no
    # total, with the reason, rather than a renormalised credit from what is left
    assert np.isnan(res.total).all()
    assert res.diagnostics["unscorable"] == {
        0: "boom: error: ValueError: model exploded",
        1: "boom: error: ValueError: model exploded",
    }


def test_wrong_shape_abstains_with_reason() -> None:
    with pipe({"type": "wrong-shape"}, {"type": "too-few"}) as p:
        res = p.score([S("a"), S("b")])
    assert np.isnan(res.vector.values).all()
    assert "wrong output" in res.vector.reasons[0]["wrong-shape"]
    assert "1 rows for 2 samples" in res.vector.reasons[1]["too-few"]
    assert np.isnan(res.total).all()


@rh.reward_source("garbage", batched=True)
def garbage(samples: list[rh.Sample]) -> object:
    kinds = {"str": [["high"]], "dict": [[{}]], "none": None, "int": 7, "row": [None, [object()]]}
    return kinds[samples[0].completion]


@pytest.mark.parametrize("kind", ["str", "dict", "none", "int", "row"])
def test_garbage_output_abstains_and_never_crashes(kind: str) -> None:
    hub = rh.Hub(plugins=[plugin_with(garbage)], entry_points=False)
    samples = [S(kind)] if kind != "row" else [S(kind), S(kind + " 2")]
    with rh.Pipeline({"sources": [{"type": "garbage"}, {"type": "length"}]}, hub=hub) as p:
        res = p.score(samples)
    assert np.isnan(res.vector.column("garbage")).all()
    last = res.vector.reasons[-1]["garbage"]  # for "row", row 0 (None) abstains plainly
    assert last.startswith("wrong output"), last
    assert not np.isnan(res.vector.column("brevity")).any()


def test_inf_is_rejected_as_wrong_output() -> None:
    with pipe({"type": "inf"}) as p:
        res = p.score([S("a")])
    assert math.isnan(res.vector.values[0, 0])
    assert "inf" in res.vector.reasons[0]["inf"]


def test_a_sample_that_times_out_alone_fails_its_check() -> None:
    with pipe({"type": "slow", "timeout_s": 0.3, "batch_size": 1}) as p:
        t0 = time.perf_counter()
        res = p.score([S("fast"), S("slow"), S("fast too")])
        elapsed = time.perf_counter() - t0
    assert res.vector.column("slow").tolist() == [1.0, 0.0, 1.0]  # 0.0: the fail_value
    assert res.vector.reasons[1] == {"slow": "failed: timeout after 0.3s"}
    assert res.vector.failed[:, 0].tolist() == [False, True, False]
    assert elapsed < 1.5


def test_hung_calls_do_not_starve_later_batches() -> None:
    """More hung calls than worker threads: later batches still run on a fresh pool."""
    samples = [S(f"slow {i}") for i in range(4)] + [S("fast")]
    with pipe({"type": "slow", "timeout_s": 0.2, "batch_size": 1, "concurrency": 8}) as p:
        p.engine._max_threads = 2
        first = p.score(samples)
        t0 = time.perf_counter()
        second = p.score([S("quick")])
        assert time.perf_counter() - t0 < 1.0
    assert all(first.vector.reasons[i] == {"slow": "failed: timeout after 0.2s"} for i in range(4))
    assert first.vector.values[4].tolist() == [1.0]  # it waited for a thread, then ran
    assert second.vector.values.tolist() == [[1.0]]


@rh.reward_source("nap")
def nap(sample: rh.Sample) -> float:
    time.sleep(0.15)
    return 1.0


def test_time_waiting_for_a_thread_does_not_count_towards_the_timeout() -> None:
    hub = rh.Hub(plugins=[plugin_with(nap)], entry_points=False)
    spec = {"sources": [{"type": "nap", "timeout_s": 0.3, "batch_size": 1, "concurrency": 6}]}
    with rh.Pipeline(spec, hub=hub) as p:
        p.engine._max_threads = 2
        res = p.score([S(str(i)) for i in range(6)])  # three waves of two: 0.45 s in all
    assert res.vector.values.ravel().tolist() == [1.0] * 6, res.vector.reasons


def test_row_level_abstain_reasons() -> None:
    with pipe({"type": "picky"}) as p:
        res = p.score([S("none"), S("why"), S("half"), S("ok")])
    v = res.vector
    assert np.isnan(v.values[0]).all() and v.reasons[0] == {"picky": "abstained"}
    assert v.reasons[1] == {"picky": "no reference answer"}
    assert (
        v.values[2, 0] == 1.0
        and math.isnan(v.values[2, 1])
        and v.reasons[2] == {"picky": "abstained"}
    )
    assert v.values[3].tolist() == [1.0, 2.0] and v.reasons[3] == {}


def test_dedup_and_cache() -> None:
    CALLS.clear()
    with pipe({"type": "counting", "batch_size": 100}) as p:
        res = p.score([S("a"), S("bb"), S("a"), S("bb"), S("a")])
        assert res.vector.column("count").tolist() == [1, 2, 1, 2, 1]
        assert CALLS == [2]  # deduplicated within the call
        assert p.engine.stats.deduplicated == 3
        p.score([S("a"), S("ccc")])
        assert CALLS == [2, 1]  # "a" came from the cache
        assert p.engine.stats.memory_hits == 1


def test_cache_is_bounded_and_keyed_by_config() -> None:
    CALLS.clear()
    with pipe({"type": "counting"}, cache={"memory_items": 2}) as p:
        p.score([S("a"), S("b"), S("c")])
        p.score([S("a")])  # evicted: LRU holds the 2 most recent
        assert CALLS == [3, 1]
    with pipe(
        {"type": "length", "id": "l1", "config": {"target": 5}},
        {"type": "length", "id": "l2", "config": {"target": 10, "objective": "b2"}},
    ) as p:
        res = p.score([S("abcde")])
        assert res.vector.values.tolist() == [[0.0, -0.5]]


def test_disk_cache_survives_a_new_pipeline(tmp_path: Path) -> None:
    CALLS.clear()
    spec = {"type": "counting"}
    cache = {"path": str(tmp_path / "c.sqlite")}
    with pipe(spec, cache=cache) as p:
        p.score([S("a"), S("bb")])
    with pipe(spec, cache=cache) as p:
        res = p.score([S("a"), S("bb"), S("ccc")])
        assert p.engine.stats.disk_hits == 2
    assert CALLS == [2, 1]
    assert res.vector.column("count").tolist() == [1, 2, 3]


def test_failures_are_not_cached() -> None:
    with pipe({"type": "slow", "timeout_s": 0.2}) as p:
        p.score([S("slow")])
        assert p.engine.stats.computed == 1
        p.score([S("slow")])
        assert p.engine.stats.computed == 2


def test_async_sources_run_concurrently_under_the_cap() -> None:
    AsyncJudge.peak = 0
    with pipe({"type": "async-judge", "batch_size": 1, "concurrency": 3}) as p:
        t0 = time.perf_counter()
        res = p.score([S(str(i)) for i in range(9)])
        elapsed = time.perf_counter() - t0
    assert res.vector.values.ravel().tolist() == [1.0] * 9
    assert AsyncJudge.peak == 3
    assert elapsed < 0.45  # 3 waves of 0.05 s, not 9


def test_ascore_from_async_code_and_score_inside_a_running_loop() -> None:
    async def main() -> tuple[rh.ScoreResult, rh.ScoreResult]:
        with pipe({"type": "counting"}) as p:
            a = await p.ascore([S("abc")])
            b = p.score([S("abcd")])  # a notebook cell: sync call under a running loop
            return a, b

    a, b = asyncio.run(main())
    assert a.total.tolist() == [3.0] and b.total.tolist() == [4.0]


def test_when_routes_samples() -> None:
    samples = [
        rh.Sample(prompt="q", completion="aaa", metadata={"data_source": "gsm8k"}),
        rh.Sample(prompt="q", completion="bb", metadata={"data_source": "chat"}),
    ]
    with pipe(
        {"type": "counting", "when": "metadata.data_source in [gsm8k, math]"},
        {"type": "length", "config": {"target": 2}},
    ) as p:
        res = p.score(samples)
    assert res.vector.column("count")[0] == 3.0 and math.isnan(res.vector.column("count")[1])
    assert res.vector.reasons[1] == {"counting": "not applicable"}
    assert res.total[1] == 0.0


def test_threads_do_not_leak_between_pipelines() -> None:
    before = threading.active_count()
    for _ in range(3):
        with pipe({"type": "counting"}) as p:
            p.score([S("a")])
    time.sleep(0.05)
    assert threading.active_count() <= before + 1


BUILTIN_SPECS = [
    {"type": "length", "config": {"target": 5, "unit": "words"}},
    {
        "type": "regex",
        "config": {
            "patterns": [
                {"pattern": "a+", "objective": "has_a"},
                {"pattern": "\\d", "objective": "no_digit", "must_match": False},
            ]
        },
    },
    {"type": "python", "config": {"function": "tests.helpers:word_count"}},
    {"type": "json-schema", "config": {"schema": {"type": "object", "required": ["a"]}}},
    {"type": "keywords", "config": {"required": ["a", "b c"], "forbidden": ["x"]}},
    {"type": "format", "config": {"tags": ["think", "answer"], "mode": "partial"}},
    {"type": "repetition", "config": {"n": 2}},
    {"type": "cel", "config": {"expressions": {"short": "size(completion) < 20"}}},
]

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
sample_lists = st.lists(st.builds(S, texts, st.sampled_from(["p1", "p2"])), max_size=12)


@pytest.mark.parametrize("spec", BUILTIN_SPECS, ids=lambda s: s["type"])
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=sample_lists, b=sample_lists)
def test_score_of_concatenation_equals_concatenated_scores(spec: dict, a: list, b: list) -> None:
    with rh.Pipeline({"sources": [spec]}, hub=rh.Hub(entry_points=False)) as p1:
        whole = p1.vector(a + b).values if a + b else np.zeros((0, 1))
    with rh.Pipeline({"sources": [spec]}, hub=rh.Hub(entry_points=False)) as p2:
        parts = [p2.vector(x).values for x in (a, b) if x]
    if parts:
        np.testing.assert_array_equal(whole, np.concatenate(parts))


@pytest.mark.parametrize("spec", BUILTIN_SPECS, ids=lambda s: s["type"])
def test_builtin_sources_pass_the_conformance_kit(spec: dict) -> None:
    cls = rh.Hub(entry_points=False).sources.get(spec["type"])
    check_source(cls, spec["config"])


class ThreadSpy(rh.RewardSource):
    """An inline source that records which thread ran each batch; 'raise' in a batch fails it."""

    type = "thread-spy"
    objectives = ("spy",)
    inline = True
    threads: ClassVar[list[str]] = []

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        type(self).threads.append(threading.current_thread().name)
        if any(s.completion == "raise" for s in samples):
            raise RuntimeError("rule crashed")
        return [[1.0] for _ in samples]


def test_inline_sources_skip_the_thread_hop_unless_a_timeout_needs_one() -> None:
    hub = rh.Hub(plugins=[plugin_with(ThreadSpy)], entry_points=False)
    ThreadSpy.threads.clear()
    with rh.Pipeline({"sources": [{"type": "thread-spy", "batch_size": 2}]}, hub=hub) as p:
        res = p.score([S("a"), S("b"), S("raise"), S("c")])
    # the engine's event-loop thread, not a worker thread ("rewardhub_<n>")
    assert ThreadSpy.threads and all(t == "rewardhub-loop" for t in ThreadSpy.threads)
    # the failing batch abstains with its reason; the other batch still scores
    assert res.vector.values.ravel().tolist()[:2] == [1.0, 1.0]
    assert res.vector.reasons[2] == {"thread-spy": "error: RuntimeError: rule crashed"}
    assert res.vector.reasons[3] == res.vector.reasons[2]

    ThreadSpy.threads.clear()
    spec = {"sources": [{"type": "thread-spy", "timeout_s": 5}]}
    with rh.Pipeline(spec, hub=hub) as p:
        p.score([S("a")])
    assert ThreadSpy.threads and ThreadSpy.threads[0].startswith("rewardhub_")


def test_builtin_rule_sources_run_inline() -> None:
    """Cheap pure-Python sources are marked inline; a tokenizer-backed length is not."""
    h = rh.Hub(entry_points=False)
    for name in ("length", "regex", "keywords", "format", "repetition", "json-schema"):
        assert h.sources.get(name).inline, name
    length = h.sources.get("length")
    assert not length({"target": 10, "unit": "tokens", "tokenizer": "gpt2"}).inline


def test_memory_cache_keeps_recently_hit_entries() -> None:
    from rewardhub.cache import MemoryCache

    cache = MemoryCache(4)
    cache.put_many(["a", "b", "c", "d"], [b"1", b"2", b"3", b"4"])
    assert cache.get_many(["a", "x"]) == [b"1", None]  # a is now the most recent
    cache.put_many(["e"], [b"5"])
    assert len(cache) == 4
    assert cache.get_many(["a", "b", "e"]) == [b"1", None, b"5"]  # b, the oldest, went
    assert MemoryCache(0).get_many(["a"]) == [None]


@rh.reward_source("flat", batched=True)
def flat(samples: list[rh.Sample]) -> list[float | None]:
    """One objective as a flat list, as TRL-style reward functions return it."""
    return [None if s.completion == "skip" else float(len(s.completion)) for s in samples]


def test_flat_list_output_for_one_objective() -> None:
    with rh.Pipeline(
        {"sources": [{"type": "flat"}]}, hub=rh.Hub(plugins=[plugin_with(flat)], entry_points=False)
    ) as p:
        good = p.score([S("ab"), S("abc")])
        mixed = p.score([S("abcd"), S("skip")])
    assert good.vector.values.ravel().tolist() == [2.0, 3.0]
    assert mixed.vector.values[0].tolist() == [4.0]
    assert math.isnan(mixed.vector.values[1, 0]) and mixed.vector.reasons[1] == {
        "flat": "abstained"
    }


def test_failed_check_scores_the_failing_value_with_its_reason():
    class Verifier(rh.RewardSource):
        type = "fail-verifier"
        objectives = ("correct",)
        fail_value = -1.0

        def score(self, samples):
            return [
                rh.Fail("time-out on its content") if s.completion == "bomb" else [1.0]
                for s in samples
            ]

    class Broken(rh.RewardSource):
        type = "fail-whole"
        objectives = ("fmt",)

        def score(self, samples):
            raise rh.FailNow("unparsable")

    hub = rh.Hub(plugins=[plugin_with(Verifier, Broken)])
    pipe = rh.Pipeline.from_spec(
        {
            "sources": [{"type": "fail-verifier"}, {"type": "fail-whole"}],
            "aggregate": {"method": "weighted"},
        },
        hub=hub,
    )
    res = pipe.score(
        [rh.Sample(prompt="p", completion="bomb"), rh.Sample(prompt="p", completion="ok")]
    )
    assert res.vector.values.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert res.vector.reasons[0]["fail-verifier"] == "failed: time-out on its content"
    assert res.vector.reasons[1]["fail-whole"] == "failed: unparsable"


@pytest.mark.parametrize("use_async", [False, True])
def test_sources_see_the_batch_deadline(use_async):
    from rewardhub.source import current_deadline, time_left

    seen: list[float | None] = []

    class Sync(rh.RewardSource):
        type = "deadline-sync"
        objectives = ("d",)

        def score(self, samples):
            seen.append(time_left())
            return [[1.0] for _ in samples]

    class Async(Sync):
        type = "deadline-async"

        async def ascore(self, samples):
            return self.score(samples)

    assert current_deadline() is None
    hub = rh.Hub(plugins=[plugin_with(Sync, Async)])
    kind = "deadline-async" if use_async else "deadline-sync"
    spec = {"sources": [{"type": kind, "timeout_s": 5}, {"type": kind, "id": "none"}]}
    spec["sources"][1]["rename"] = {"d": "e"}
    rh.Pipeline.from_spec(spec, hub=hub).score([rh.Sample(prompt="p", completion="c")])
    bounded = sorted(seen, key=lambda x: x is None)
    assert bounded[0] is not None and 4.0 < bounded[0] <= 5.0
    assert bounded[1] is None
