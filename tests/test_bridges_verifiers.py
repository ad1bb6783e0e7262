"""verifiers bridge: a v1 Task's rewards as the ``verifiers`` source, a pipeline as plugged
reward and metric functions. Importing verifiers takes seconds: marked slow."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

pytest.importorskip("verifiers.v1")
pytestmark = pytest.mark.slow

import rewardhub as rh  # noqa: E402
from rewardhub.bridges.verifiers import INFO_KEY, Verifiers, pipeline_rewards  # noqa: E402
from rewardhub.testing import check_source  # noqa: E402
from tests.bridge_examples import SAMPLES  # noqa: E402

CONFIG = {"task": "tests.bridge_examples.verifiers:MathTask", "metrics": ["length"]}


def _their_trace(sample: rh.Sample) -> tuple[Any, Any]:
    """The task and trace verifiers itself scores (built as the bridge builds them)."""
    task, trace = Verifiers(CONFIG).trace_of(sample)
    asyncio.run(task.score(trace))
    return task, trace


def test_source_gives_total_each_reward_and_listed_metrics() -> None:
    source = Verifiers(CONFIG)
    assert source.output_objectives == ("reward", "brevity", "correct", "length")
    for sample, row in zip(SAMPLES, source.score(SAMPLES)):
        _, trace = _their_trace(sample)
        expected = [
            trace.reward,
            trace.rewards["brevity"].score,
            trace.rewards["correct"].score,
            trace.metrics["length"],
        ]
        assert row == expected
    assert source.score(SAMPLES[:1])[0][2] == 1.0  # \boxed{4} vs answer "4"


def test_a_scoring_error_could_not_score_never_zero() -> None:
    res = rh.Pipeline.from_spec(
        {"sources": [{"id": "vf", "type": "verifiers", "config": CONFIG}]}
    ).score([rh.Sample(prompt="p", completion="boom", reference="4")])
    assert res.vector.unscorable.all() and math.isnan(res.total[0])
    assert "verifier service unavailable" in (res.vector.reason(0, 0) or "")


def test_a_missing_reference_field_names_it() -> None:
    with pytest.raises(rh.SourceError, match="reference_field"):
        Verifiers({**CONFIG, "reference_field": "solution"}).score(SAMPLES[:1])


def test_source_conformance() -> None:
    check_source(Verifiers, CONFIG, SAMPLES)


def test_round_trip_their_task_through_a_pipeline_back_to_verifiers() -> None:
    """Their Task → our source → our pipeline → plugged verifiers reward + metrics: the same
    trace.reward and per-reward values as their Task alone."""
    import verifiers.v1 as vf

    from tests.bridge_examples.verifiers import MathData, MathTask

    pipe = rh.Pipeline.from_spec(
        {
            "objectives": ["brevity", "correct"],
            "sources": [
                {
                    "id": "vf",
                    "type": "verifiers",
                    "config": {**CONFIG, "total": None, "metrics": []},
                }
            ],
            "aggregate": {"method": "weighted", "weights": {"brevity": 0.2, "correct": 1.0}},
        }
    )
    scorer = pipeline_rewards(pipe)

    class Bridged(vf.Task[MathData]):  # type: ignore[misc]
        @vf.reward  # type: ignore[untyped-decorator]
        async def rewardhub(self, task: Any, trace: vf.Trace) -> float:
            return await scorer.reward(task, trace)

        @vf.metric  # type: ignore[untyped-decorator]
        async def objectives(self, task: Any, trace: vf.Trace) -> dict[str, float]:
            return await scorer.metrics(task, trace)

    for sample in SAMPLES:
        _, theirs = _their_trace(sample)
        task, trace = Verifiers(CONFIG).trace_of(sample)
        ours = Bridged(task.data)
        asyncio.run(ours.score(trace))
        assert trace.reward == pytest.approx(theirs.reward, abs=1e-12)
        assert trace.metrics["brevity"] == theirs.rewards["brevity"].score
        assert trace.metrics["correct"] == theirs.rewards["correct"].score
        assert trace.info[INFO_KEY]["outcomes"] == {"brevity": "value", "correct": "value"}
        assert isinstance(MathTask, type)


def test_an_unscorable_rollout_is_left_unscored_with_the_error_on_the_trace() -> None:
    import verifiers.v1 as vf

    from tests.bridge_examples.verifiers import MathData

    scorer = pipeline_rewards({"sources": [{"id": "vf", "type": "verifiers", "config": CONFIG}]})

    class Bridged(vf.Task[MathData]):  # type: ignore[misc]
        @vf.reward  # type: ignore[untyped-decorator]
        async def rewardhub(self, task: Any, trace: vf.Trace) -> float:
            return await scorer.reward(task, trace)

    task, trace = Verifiers(CONFIG).trace_of(
        rh.Sample(prompt="p", completion="boom", reference="4")
    )
    with pytest.raises(vf.TaskError, match="could not score"):
        asyncio.run(Bridged(task.data).score(trace))
    assert trace.rewards == {"rewardhub": None}  # verifiers' "scoring didn't run"
