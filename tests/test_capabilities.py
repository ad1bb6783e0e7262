"""Declared capabilities and the building Hub: a plugin normaliser declaring itself row-wise
works under verl and the server's batching; an ensemble's members and a gate's base come from
the pipeline's Hub (plugin types included)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.adapters import verl
from rewardhub.batching import batch_relative
from rewardhub.testing import plugin_with


class Halve(rh.Normalizer):
    """Halves every value: each row on its own."""

    method = "halve"
    rowwise = True

    def transform(self, values: np.ndarray) -> np.ndarray:
        return values / 2


class Centre(rh.Normalizer):
    """Subtracts the batch mean: batch-relative (undeclared)."""

    method = "centre"

    def transform(self, values: np.ndarray) -> np.ndarray:
        return values - np.nanmean(values, axis=0)


@rh.reward_source("chars", objectives=["chars"])
def chars(sample: rh.Sample) -> float:
    return float(len(sample.completion))


def _hub() -> rh.Hub:
    return rh.Hub(plugins=[plugin_with(Halve, Centre, chars)], entry_points=False)


def _spec(norm: str) -> dict[str, Any]:
    return {"sources": [{"type": "chars"}], "normalize": norm}


def test_a_plugin_normaliser_declared_rowwise_runs_under_verl() -> None:
    with rh.Pipeline(_spec("halve"), hub=_hub()) as pipe:
        assert batch_relative(pipe) == []
        score = verl.make_compute_score_sync(pipe)
        assert score(solution_str="abcd")["score"] == 2.0
        score.batcher.close()  # type: ignore[attr-defined]
    with rh.Pipeline(_spec("centre"), hub=_hub()) as pipe:
        assert batch_relative(pipe) == ["normalize method 'centre'"]
        with pytest.raises(rh.SpecError, match="compares samples within a batch"):
            verl.make_compute_score_sync(pipe)


def test_ensemble_members_and_gate_bases_come_from_the_pipelines_hub() -> None:
    spec = {
        "sources": [
            {
                "type": "ensemble",
                "config": {"members": [{"type": "chars"}, {"type": "chars"}]},
            }
        ],
        "normalize": "none",
        "aggregate": {
            "method": "gate",
            "base": {"method": "weighted"},
            "gates": [{"objective": "chars", "min": 0.0}],
        },
    }
    with rh.Pipeline(spec, hub=_hub()) as pipe:  # "chars" exists only in this hub
        res = pipe.score([rh.Sample("q", "abc")])
    assert res.vector.values.tolist() == [[3.0]] and res.total.tolist() == [3.0]
