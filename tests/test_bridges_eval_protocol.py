"""Eval Protocol bridge: reward functions as the ``eval-protocol`` source and back.

Importing eval_protocol imports litellm (seconds), so these tests are marked slow."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import pytest

if importlib.util.find_spec("eval_protocol") is None:  # not importorskip: see eval_protocol_models
    pytest.skip("needs rewardhub[eval-protocol]", allow_module_level=True)
pytestmark = pytest.mark.slow

import rewardhub as rh  # noqa: E402
from rewardhub.bridges._common import chat  # noqa: E402
from rewardhub.bridges.eval_protocol import (  # noqa: E402
    EvalProtocol,
    pipeline_reward_function,
)
from rewardhub.testing import check_source  # noqa: E402
from tests.bridge_examples import SAMPLES  # noqa: E402
from tests.bridge_examples import eval_protocol as ex  # noqa: E402

COMPOSITE = {
    "function": "tests.bridge_examples.eval_protocol:exact_and_short",
    "metrics": ["exact", "short"],
}


def _direct(fn: Any, sample: rh.Sample) -> Any:
    return fn(messages=chat(sample), ground_truth=sample.reference)


def test_source_gives_the_score_and_each_listed_metric() -> None:
    source = EvalProtocol(COMPOSITE)
    assert source.output_objectives == ("score", "exact", "short")
    rows = source.score(SAMPLES)
    for sample, row in zip(SAMPLES, rows):
        result = _direct(ex.exact_and_short, sample)
        assert row == [result.score, result.metrics["exact"].score, result.metrics["short"].score]


def test_their_invalid_score_is_a_failed_check_by_default() -> None:
    """format_reward marks a wrong format is_score_valid=False: excluding the sample would
    pay a policy for breaking the format, so it is a failed check unless told otherwise."""
    spec = {
        "sources": [
            {
                "id": "fmt",
                "type": "eval-protocol",
                "config": {"function": "tests.bridge_examples.eval_protocol:format_reward"},
            }
        ]
    }
    res = rh.Pipeline.from_spec(spec).score(SAMPLES)
    assert res.vector.values[:, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert res.vector.failed[[0, 1, 2, 4, 5], 0].all()
    assert "Format is incorrect" in (res.vector.reason(0, 0) or "")
    spec["sources"][0]["config"]["invalid"] = "abstain"  # type: ignore[index]
    res = rh.Pipeline.from_spec(spec).score(SAMPLES)
    assert res.vector.unscorable[0, 0] and math.isnan(res.total[0])


def test_their_error_and_exceptions_could_not_score() -> None:
    res = rh.Pipeline.from_spec(
        {"sources": [{"id": "ep", "type": "eval-protocol", "config": COMPOSITE}]}
    ).score([rh.Sample(prompt="p", completion="boom", reference="x")])
    assert res.vector.unscorable.all()
    assert res.vector.reason(0, 0) == "eval-protocol: sandbox failed to start"
    missing = EvalProtocol({**COMPOSITE, "metrics": ["nope"]}).score(SAMPLES[:1])
    assert missing == [rh.Abstain("eval-protocol: metric 'nope' not reported")]


def test_batch_mode_scores_each_prompts_rollouts_together() -> None:
    source = EvalProtocol({"function": "tests.bridge_examples.eval_protocol:rank_in_group"})
    group = [
        rh.Sample(prompt="p", completion="short"),
        rh.Sample(prompt="q", completion="x"),
        rh.Sample(prompt="p", completion="much longer"),
    ]
    assert source.score(group) == [[1.0], [1.0], [0.0]]


def test_source_conformance() -> None:
    check_source(EvalProtocol, COMPOSITE, SAMPLES)


def test_round_trip_their_reward_through_a_pipeline_back_to_a_reward_function() -> None:
    pipe = rh.Pipeline.from_spec(
        {
            "objectives": ["exact", "short"],
            "sources": [
                {"id": "ep", "type": "eval-protocol", "config": {**COMPOSITE, "score": None}}
            ],
            "aggregate": {"method": "weighted", "weights": {"exact": 0.7, "short": 0.3}},
        }
    )
    ours = pipeline_reward_function(pipe)
    for sample in SAMPLES:
        theirs, mine = _direct(ex.exact_and_short, sample), _direct(ours, sample)
        assert mine.score == pytest.approx(theirs.score, abs=1e-12)
        assert mine.is_score_valid
        for name in ("exact", "short"):
            assert mine.metrics[name].score == theirs.metrics[name].score


def test_batch_reward_function_and_unscorable_convention() -> None:
    pipe = {"sources": [{"id": "ep", "type": "eval-protocol", "config": COMPOSITE}]}
    batch = pipeline_reward_function(pipe, mode="batch")
    rollouts = [chat(rh.Sample(prompt="p", completion=c)) for c in ("Paris", "boom")]
    good, bad = batch(rollouts_messages=rollouts, ground_truth="paris")
    assert good.is_score_valid and good.metrics["exact"].score == 1.0
    assert not bad.is_score_valid and "sandbox failed to start" in (bad.error or "")
    assert bad.metrics["exact"].data["outcome"] == "unscorable"
