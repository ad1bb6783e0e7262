"""OpenEnv bridge: rubrics as the ``openenv-rubric`` source, a pipeline as a rubric."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

pytest.importorskip("openenv.core.rubrics")

import rewardhub as rh
from rewardhub.bridges.openenv import (
    OpenEnvRubric,
    observation_metadata,
    pipeline_rubric,
    to_sample,
)
from rewardhub.testing import check_source
from tests.bridge_examples import SAMPLES
from tests.bridge_examples import openenv as ex

WEIGHTED = {
    "rubric": "tests.bridge_examples.openenv:weighted",
    "components": {"exact": "rubric_0", "brevity": "rubric_1"},
}


def _their_inputs(sample: rh.Sample) -> tuple[str, Any]:
    from openenv.core.env_server.types import Observation

    return sample.completion, Observation(done=True, metadata=dict(observation_metadata(sample)))


def _direct(rubric: Any, sample: rh.Sample) -> tuple[float, ...]:
    total = rubric(*_their_inputs(sample))
    return (total, rubric.rubric_0.last_score, rubric.rubric_1.last_score)


def test_source_gives_the_rubric_and_its_named_sub_rubrics() -> None:
    source = OpenEnvRubric(WEIGHTED)
    assert source.output_objectives == ("reward", "exact", "brevity")
    rubric = ex.weighted()
    assert source.score(SAMPLES) == [list(_direct(rubric, s)) for s in SAMPLES]
    assert source.score(SAMPLES)[2] == [0.7 + 0.3 * (1 - 5 / 200), 1.0, 1 - 5 / 200]


def test_a_container_that_stops_early_scores_its_unrun_parts_as_skipped() -> None:
    config = {
        "rubric": "tests.bridge_examples.openenv:gated",
        "components": {"exact": "rubric_1.rubric_0"},
        "skipped_value": 0.0,
    }
    rows = OpenEnvRubric(config).score([SAMPLES[2], SAMPLES[-1]])
    assert rows[0][1] == 1.0  # "Paris" == "paris": the weighted part ran
    assert rows[1] == [0.0, 0.0]  # empty: the gate stopped it, the sub-rubric never ran


def test_async_rubrics_are_awaited_from_sync_and_async_code() -> None:
    source = OpenEnvRubric({"rubric": "tests.bridge_examples.openenv:mixed_async"})
    sync = source.score(SAMPLES)
    asy = rh.Pipeline.from_spec(
        {"sources": [{"type": "openenv-rubric", "config": {"rubric": source.config.rubric}}]}
    ).score(SAMPLES)
    assert [r[0] for r in sync] == asy.vector.values[:, 0].tolist()
    assert sync[2][0] == pytest.approx(0.5 + 0.5 * (1 - 5 / 200))


def test_rubric_errors_and_non_numbers_could_not_score_with_the_reason() -> None:
    pipe = rh.Pipeline.from_spec(
        {
            "sources": [
                {
                    "id": "oe",
                    "type": "openenv-rubric",
                    "config": {"rubric": "tests.bridge_examples.openenv:Broken"},
                }
            ]
        }
    )
    res = pipe.score(
        [rh.Sample(prompt="p", completion="boom"), rh.Sample(prompt="p", completion="none")]
    )
    assert res.vector.unscorable.all() and math.isnan(res.total[0])
    assert res.vector.reason(0, 0) == (
        "the openenv rubric raised RuntimeError: judge endpoint unreachable"
    )
    assert "returned None, not a finite number" in (res.vector.reason(1, 0) or "")


def test_source_conformance_and_pickling() -> None:
    check_source(OpenEnvRubric, WEIGHTED, SAMPLES)
    source = OpenEnvRubric(WEIGHTED)
    source.score(SAMPLES[:1])
    clone = pickle.loads(pickle.dumps(source))
    assert clone.score(SAMPLES) == source.score(SAMPLES)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({**WEIGHTED, "components": {"x": "rubric_9"}}, "components.x"),
        ({"rubric": "tests.bridge_examples.openenv:SAMPLES_NOT_THERE"}, "rubric"),
        ({"rubric": "tests.bridge_examples:SAMPLES"}, "rubric"),
    ],
)
def test_a_bad_rubric_reference_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(rh.SourceError, match=f"openenv-rubric source: {field}"):
        OpenEnvRubric(config).score(SAMPLES[:1])


def test_config_needs_an_objective() -> None:
    with pytest.raises(Exception, match="no objective"):
        OpenEnvRubric({"rubric": "m:x", "total": None})


def test_round_trip_their_rubric_through_a_pipeline_back_to_a_rubric() -> None:
    """Their rubric → our source → our pipeline → an OpenEnv rubric: same numbers."""
    pipe = rh.Pipeline.from_spec(
        {
            "objectives": ["exact", "brevity"],
            "sources": [
                {"id": "oe", "type": "openenv-rubric", "config": {**WEIGHTED, "total": None}}
            ],
            "aggregate": {"method": "weighted", "weights": {"exact": 0.7, "brevity": 0.3}},
        }
    )
    ours, theirs = pipeline_rubric(pipe), ex.weighted()
    for sample in SAMPLES:
        total = ours(*_their_inputs(sample))
        expected = _direct(theirs, sample)
        assert total == pytest.approx(expected[0], abs=1e-12)
        named = dict(ours.named_rubrics())
        assert named["objectives.exact"].last_score == expected[1]
        assert named["objectives.brevity"].last_score == expected[2]
        assert ours.last_details["outcomes"] == {"exact": "value", "brevity": "value"}


def test_an_unscorable_sample_is_no_reward_not_zero() -> None:
    pipe = rh.Pipeline.from_spec(
        {
            "sources": [
                {
                    "id": "oe",
                    "type": "openenv-rubric",
                    "config": {"rubric": "tests.bridge_examples.openenv:Broken"},
                }
            ]
        }
    )
    rubric = pipeline_rubric(pipe)
    assert rubric(*_their_inputs(rh.Sample(prompt="p", completion="boom"))) is None
    assert dict(rubric.named_rubrics())["objectives.reward"].last_score is None
    assert "unreachable" in rubric.last_details["reasons"]["reward"]
    filled = pipeline_rubric(pipe, unscorable=-1.0)
    assert filled(*_their_inputs(rh.Sample(prompt="p", completion="boom"))) == -1.0


def test_to_sample_reads_an_action_field_and_refuses_a_missing_one() -> None:
    from openenv.core.env_server.types import Action, Observation

    class Say(Action):  # type: ignore[misc]
        message: str

    obs = Observation(metadata={"prompt": "hi", "reference": "4", "group": "g"})
    assert to_sample(Say(message="4"), obs) == rh.Sample(
        prompt="hi", completion="4", reference="4", metadata={"group": "g"}
    )
    with pytest.raises(ValueError, match="action_field="):
        to_sample(Say(message="4"), obs, action_field="text")


def test_a_pipeline_that_compares_samples_in_a_batch_is_refused() -> None:
    spec = {
        "sources": [{"type": "length", "config": {"target": 10}}],
        "normalize": {"method": "zscore"},
    }
    with pytest.raises(rh.SpecError, match="one call at a time"):
        pipeline_rubric(spec)
