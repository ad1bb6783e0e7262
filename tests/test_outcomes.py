"""Issue #8 part 3: outcome kinds kept apart, failures that never pay, output never coerced."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewardhub as rh
from rewardhub.testing import plugin_with


def S(completion: str, **meta: Any) -> rh.Sample:
    return rh.Sample(prompt="p", completion=completion, metadata=meta)


@rh.reward_source("verdict", objectives=["correct"])
def verdict(sample: rh.Sample) -> Any:
    """1.0 right, 0.0 wrong, Fail on a crash caused by the content, Abstain when the judge
    (the machinery) is down."""
    c = sample.completion
    if c == "crash":
        return rh.Fail("parser crashed on the answer")
    if c == "judge down":
        return rh.Abstain("judge did not answer")
    return 1.0 if c == "right" else 0.0


@rh.reward_source("style", objectives=["style"])
def style(sample: rh.Sample) -> float:
    return 1.0


def run(spec_extra: dict[str, Any], samples: list[rh.Sample]) -> rh.ScoreResult:
    hub = rh.Hub(plugins=[plugin_with(verdict, style)], entry_points=False)
    spec = {
        "sources": [
            {"type": "verdict", "when": "metadata.math != false"},
            {"type": "style"},
        ],
        "normalize": "none",
        **spec_extra,
    }
    with rh.Pipeline(spec, hub=hub) as p:
        return p.score(samples)


def test_the_four_outcomes_are_kept_apart_and_round_trip_through_records() -> None:
    res = run({}, [S("right"), S("crash"), S("judge down"), S("prose", math=False)])
    v = res.vector
    out = rh.Outcome
    assert v.outcomes is not None
    assert v.outcomes[:, 0].tolist() == [out.VALUE, out.FAILED, out.UNSCORABLE, out.NOT_APPLICABLE]
    assert v.failed[:, 0].tolist() == [False, True, False, False]
    assert v.unscorable[:, 0].tolist() == [False, False, True, False]
    assert v.not_applicable[:, 0].tolist() == [False, False, False, True]
    assert v.values[1, 0] == 0.0 and v.reasons[1] == {
        "verdict": "failed: parser crashed on the answer"
    }
    recs = v.to_records()
    assert "outcomes" not in recs[0]
    assert recs[1]["outcomes"] == {"correct": "failed"}
    assert recs[2]["outcomes"] == {"correct": "unscorable"}
    assert recs[3]["outcomes"] == {"correct": "not applicable"}
    back = rh.RewardBatch.from_records(recs)
    np.testing.assert_array_equal(back.outcomes, v.outcomes)  # type: ignore[arg-type]
    # the cells survive select and concat
    sub = v.select([2, 3])
    assert sub.unscorable[:, 0].tolist() == [True, False]
    both = rh.RewardBatch.concat([sub.columns([0]), sub.columns([1])])
    assert both.not_applicable.tolist() == [[False, False], [True, False]]


def test_records_without_outcomes_still_tell_not_applicable_from_unscorable() -> None:
    recs = [
        {"rewards": {"a": None, "b": 1.0}, "reasons": {"src": "not applicable"}},
        {"rewards": {"a": None, "b": 1.0}, "reasons": {"src": "worker died"}},
        {"rewards": {"a": 0.0, "b": 1.0}, "reasons": {"src": "failed: too long"}},
    ]
    back = rh.RewardBatch.from_records(recs)
    assert back.not_applicable[:, 0].tolist() == [True, False, False]
    assert back.unscorable[:, 0].tolist() == [False, True, False]
    with pytest.raises(ValueError, match="unknown outcome 'gone'"):
        rh.RewardBatch.from_records([{"rewards": {"a": None}, "outcomes": {"a": "gone"}}])


def test_an_unscorable_sample_gets_no_credit_by_default() -> None:
    """The reward hack of issue #8: make the verifier time out or the judge fail, keep the
    other objectives' credit. Under the default the total is NaN with the reason."""
    res = run({}, [S("right"), S("wrong"), S("crash"), S("judge down")])
    assert res.total[0] == 2.0 and res.total[1] == 1.0 and res.total[2] == 1.0
    assert math.isnan(res.total[3])
    assert res.diagnostics["unscorable"] == {3: "verdict: judge did not answer"}
    assert res.to_records()[3]["total"] is None


def test_on_abstain_alternatives() -> None:
    samples = [S("wrong"), S("judge down")]
    filled = run({"on_abstain": {"fill": -1.0}}, samples)
    assert filled.total.tolist() == [1.0, 0.0]  # -1 + 1
    renorm = run({"on_abstain": "renormalize"}, samples)
    assert renorm.total.tolist() == [1.0, 2.0]  # the documented risk: above the wrong answer
    with pytest.raises(rh.AbstainError, match="sample 1: could not be scored .verdict: judge"):
        run({"on_abstain": "fail"}, samples)


def test_unscorable_samples_take_no_part_in_normalisation() -> None:
    samples = [S("right"), S("wrong"), S("judge down")]
    a = run({"normalize": "zscore"}, samples)
    b = run({"normalize": "zscore"}, samples[:2])
    np.testing.assert_allclose(a.total[:2], b.total)
    assert math.isnan(a.total[2])


# -- wrong output ------------------------------------------------------------------------------

WRONG: list[Any] = ["5", "12", b"ab", {"a": 1.0}, {1.0, 2.0}, [[1.0]], ["1"], object()]


def returns(sample: rh.Sample) -> Any:
    return VALUES[int(sample.completion)]


VALUES: list[Any] = []


@pytest.mark.parametrize("bad", WRONG, ids=lambda v: type(v).__name__ + repr(v)[:8])
def test_wrong_output_types_abstain_per_row_and_are_never_coerced(bad: Any) -> None:
    VALUES[:] = [bad, 2.0, np.float32(0.5), np.int64(3), True]
    spec = {
        "sources": [{"type": "python", "config": {"function": f"{__name__}:returns"}}],
        "normalize": "none",
    }
    with rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as p:
        res = p.score([S(str(i)) for i in range(5)])
    col = res.vector.column("python")
    assert math.isnan(col[0]) and res.vector.unscorable[0, 0]
    assert res.vector.reasons[0]["python"].startswith("wrong output: ")
    assert col[1:].tolist() == [2.0, 0.5, 3.0, 1.0]  # numbers (numpy too, and bool) are fine


@rh.reward_source("batch-out", objectives=["a", "b"], batched=True)
def batch_out(samples: list[rh.Sample]) -> Any:
    return BATCH_OUT


BATCH_OUT: Any = None


@pytest.mark.parametrize(
    ("out", "good_rows"),
    [
        ([["1", "2"], [1.0, 2.0]], [1]),  # the fast path would parse the strings
        (["12", [1.0, 2.0]], [1]),  # a string row would be split into characters
        ([{"x": 1, "y": 2}, (1, 2)], [1]),  # a dict row would give its keys
        ([b"ab", np.array([1.0, 2.0])], [1]),  # bytes would give their byte values
        ([[1.0, [2.0]], [1.0, 2.0]], [1]),  # nested lists
        ([[1.0, 2.0, 3.0], [1.0, 2.0]], [1]),  # a ragged row
    ],
)
def test_batched_rows_are_checked_one_by_one(out: Any, good_rows: list[int]) -> None:
    global BATCH_OUT
    BATCH_OUT = out
    hub = rh.Hub(plugins=[plugin_with(batch_out)], entry_points=False)
    with rh.Pipeline({"sources": [{"type": "batch-out"}]}, hub=hub) as p:
        v = p.vector([S("x"), S("y")])
    assert v.values[1].tolist() == [1.0, 2.0]
    assert np.isnan(v.values[0]).all() and v.reasons[0]["batch-out"].startswith("wrong output")


@pytest.mark.parametrize("arr", [np.array([["1", "2"]]), np.array([[{"a": 1}, 2.0]], dtype=object)])
def test_arrays_of_strings_or_objects_are_not_coerced(arr: Any) -> None:
    global BATCH_OUT
    BATCH_OUT = arr
    hub = rh.Hub(plugins=[plugin_with(batch_out)], entry_points=False)
    with rh.Pipeline({"sources": [{"type": "batch-out"}]}, hub=hub) as p:
        v = p.vector([S("x")])
    assert np.isnan(v.values).all() and v.reasons[0]["batch-out"].startswith("wrong output")


# -- time-outs -----------------------------------------------------------------------------------


@rh.reward_source("hang", batched=True)
def hang(samples: list[rh.Sample]) -> list[float]:
    if any(s.completion == "9^9^9^9" for s in samples):
        time.sleep(1.5)
    return [1.0] * len(samples)


def test_a_timed_out_batch_is_rerun_sample_by_sample() -> None:
    hub = rh.Hub(plugins=[plugin_with(hang, style)], entry_points=False)
    spec = {
        "sources": [{"type": "hang", "timeout_s": 0.3, "batch_size": 8}, {"type": "style"}],
        "normalize": "none",
    }
    samples = [S("a"), S("9^9^9^9"), S("b"), S("c")]
    with rh.Pipeline(spec, hub=hub) as p:
        t0 = time.perf_counter()
        res = p.score(samples)
        elapsed = time.perf_counter() - t0
        v = res.vector
        # the completion that hangs the verifier fails its check; the others get their values
        assert v.column("hang").tolist() == [1.0, 0.0, 1.0, 1.0]
        assert v.reasons[1] == {"hang": "failed: timeout after 0.3s"}
        assert v.failed[:, 0].tolist() == [False, True, False, False]
        assert [e for i, e in enumerate(v.reasons) if i != 1] == [{}, {}, {}]
        # it can never earn more than a wrong answer: its total is that of failing the check
        assert res.total[1] == 1.0 < res.total[0]
        assert elapsed < 1.4  # two rounds of at most 0.3 s, not the 1.5 s hang
        # time-outs depend on the machine's load: never replayed from the cache
        computed = p.engine.stats.computed
        again = p.score(samples[1:2])
        assert p.engine.stats.computed == computed + 1
        assert again.vector.reasons[0] == {"hang": "failed: timeout after 0.3s"}


# -- the property: no failure ever pays more than failing ---------------------------------------


def _aggregator_cases() -> list[str]:
    return sorted(rh.Hub(entry_points=False).aggregators.names())


class Trio(rh.RewardSource):
    """Three objectives in [-1, 1]; failing a check scores -1 on each."""

    type = "trio"
    objectives = ("a", "b", "c")
    fail_value = -1.0

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[0.0, 0.0, 0.0] for _ in samples]


#: a valid config for the aggregators that need one (a new aggregator without an entry here
#: is tested with its defaults, and the test says so if they do not validate)
CONFIGS: dict[str, dict[str, Any]] = {
    "gate": {"gates": [{"objective": "a", "min": 0.0}]},
    "lagrangian": {"constraints": [{"objective": "a", "threshold": 0.0}]},
    "wco": {"members": {"a": ["a", "b"]}},
}


def _pipeline(method: str) -> rh.Pipeline:
    hub = rh.Hub(plugins=[plugin_with(Trio)], entry_points=False)
    spec = {
        "sources": [{"type": "trio"}],
        "normalize": "none",
        "aggregate": {"method": method, **CONFIGS.get(method, {})},
    }
    try:
        return rh.Pipeline(spec, hub=hub)
    except rh.SpecError as exc:  # pragma: no cover - a new aggregator needs a CONFIGS entry
        pytest.fail(f"aggregator {method!r} needs a config in CONFIGS: {exc}")


cells = st.floats(-1.0, 1.0, allow_nan=False)


@pytest.mark.parametrize("method", _aggregator_cases())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=5),
    spread=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    at=st.tuples(st.integers(0, 4), st.integers(0, 2)),
    kind=st.sampled_from(["unscorable", "failed"]),
)
def test_no_failure_ever_earns_more_than_failing(
    method: str, values: list[list[float]], spread: list[float], at: tuple[int, int], kind: str
) -> None:
    """Over every registered aggregator: a sample whose cell failed or could not be scored
    never totals more than the same sample with that cell at the objective's failing value
    (a NaN total is not more). Samples share a prompt, so group-wise methods compare them."""
    i, j = at[0] % len(values), at[1]
    fail = Trio().fail_values()[j]
    n = len(values)
    std = np.tile(np.asarray(spread), (n, 1))
    samples = [rh.Sample(prompt="same", completion=str(r)) for r in range(n)]

    def batch(cell: float, reason: str | None) -> rh.RewardBatch:
        v = np.array(values, dtype=np.float64)
        v[i, j] = cell
        errors = tuple({"trio": reason} if r == i and reason else {} for r in range(n))
        return rh.RewardBatch(v, ("a", "b", "c"), std, errors, ("trio",) * 3)

    with _pipeline(method) as pipe:
        baseline = pipe.aggregate(batch(fail, None), samples).total[i]
        if kind == "unscorable":
            broken = batch(math.nan, "worker died")
            assert broken.unscorable[i, j]
        else:
            broken = batch(fail, "failed: timeout after 5s")
            assert broken.failed[i, j]
        total = pipe.aggregate(broken, samples).total[i]
    assert math.isnan(total) or total <= baseline + 1e-9, (method, total, baseline)
