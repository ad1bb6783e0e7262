"""OpenJudge bridge: graders as the ``openjudge`` source, a pipeline as a grader."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

pytest.importorskip("openjudge.graders.base_grader")

import rewardhub as rh
from rewardhub.bridges.openjudge import OpenJudge, pipeline_grader, sample_data
from rewardhub.testing import check_source
from tests.bridge_examples import SAMPLES
from tests.bridge_examples import openjudge as ex

CONFIG = {
    "graders": {
        "exact": {"grader": "tests.bridge_examples.openjudge:exact"},
        "length": {"grader": "tests.bridge_examples.openjudge:length"},
    }
}


def _direct(samples: list[rh.Sample]) -> dict[str, list[Any]]:
    """OpenJudge's own way: its GradingRunner over a dataset of dicts."""
    results: dict[str, list[Any]] = asyncio.run(
        ex.direct_runner().arun([sample_data(s) for s in samples])
    )
    return results


def test_source_gives_each_grader_as_an_objective() -> None:
    source = OpenJudge(CONFIG)
    assert source.output_objectives == ("exact", "length")
    direct = _direct(SAMPLES)
    expected = [[direct["exact"][i].score, direct["length"][i].score] for i in range(len(SAMPLES))]
    assert source.score(SAMPLES) == expected
    assert expected[2][0] == 1.0 and expected[4][1] < 0  # "Paris"≈"paris"; 300 chars: penalised


def test_a_mapper_routes_other_fields() -> None:
    config = {
        "graders": {
            "in_prompt": {
                "grader": "openjudge.graders.text.string_match:StringMatchGrader",
                "kwargs": {"algorithm": "substring_match"},
                "mapper": {"response": "query", "reference_response": "metadata.needle"},
            }
        }
    }
    sample = rh.Sample(prompt="find the cat here", completion="", metadata={"needle": "cat"})
    assert OpenJudge(config).score([sample]) == [[1.0]]


def test_a_grader_error_could_not_score_with_its_error() -> None:
    pipe = rh.Pipeline.from_spec(
        {
            "sources": [
                {
                    "id": "oj",
                    "type": "openjudge",
                    "config": {
                        "graders": {"ok": {"grader": "tests.bridge_examples.openjudge:flaky"}}
                    },
                }
            ]
        }
    )
    res = pipe.score(
        [rh.Sample(prompt="p", completion="boom"), rh.Sample(prompt="p", completion="fine")]
    )
    assert res.vector.unscorable[0, 0] and math.isnan(res.total[0])
    assert "grader backend down" in (res.vector.reason(0, 0) or "")
    assert res.vector.values[1, 0] == 1.0


def test_source_conformance() -> None:
    check_source(OpenJudge, CONFIG, SAMPLES)


def test_a_reference_to_something_else_names_the_field() -> None:
    bad = {"graders": {"x": {"grader": "tests.bridge_examples:SAMPLES"}}}
    with pytest.raises(rh.SourceError, match=r"openjudge source: graders\.x\.grader"):
        OpenJudge(bad).score(SAMPLES[:1])


def test_round_trip_their_graders_through_a_pipeline_back_to_a_grader() -> None:
    """Their graders → our source → our pipeline → an OpenJudge grader: the same numbers as
    OpenJudge's own weighted-sum aggregator over the original graders."""
    from openjudge.runner.aggregator.weighted_sum_aggregator import WeightedSumAggregator
    from openjudge.runner.grading_runner import GradingRunner

    pipe = rh.Pipeline.from_spec(
        {
            "objectives": ["exact", "length"],
            "sources": [{"id": "oj", "type": "openjudge", "config": CONFIG}],
            "aggregate": {"method": "weighted", "weights": {"exact": 0.8, "length": 0.2}},
        }
    )
    grader = pipeline_grader(pipe, name="rh")
    weights = {"exact": 0.8, "length": 0.2}
    theirs = GradingRunner(
        {"exact": ex.exact, "length": (ex.length, {"response": "response"})},
        show_progress=False,
        aggregators=WeightedSumAggregator(name="total", weights=weights),
    )
    data = [{"response": s.completion, "reference_response": str(s.reference)} for s in SAMPLES]
    expected = asyncio.run(theirs.arun(data))
    ours = asyncio.run(GradingRunner({"rh": grader}, show_progress=False).arun(data))["rh"]
    for i, result in enumerate(ours):
        assert result.score == pytest.approx(expected["total"][i].score, abs=1e-12)
        assert result.metadata["objectives"] == {
            "exact": expected["exact"][i].score,
            "length": expected["length"][i].score,
        }


def test_an_unscorable_sample_is_a_grader_error() -> None:
    from openjudge.graders.schema import GraderError

    pipe = {
        "sources": [
            {
                "id": "oj",
                "type": "openjudge",
                "config": {"graders": {"ok": {"grader": "tests.bridge_examples.openjudge:flaky"}}},
            }
        ]
    }
    result = asyncio.run(pipeline_grader(pipe).aevaluate(query="q", response="boom"))
    assert isinstance(result, GraderError)
    assert "grader backend down" in result.error
    assert result.metadata["outcomes"] == {"ok": "unscorable"}
