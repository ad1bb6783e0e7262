from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import rewardhub as rh

ROOT = Path(__file__).resolve().parent.parent


def hub() -> rh.Hub:
    return rh.Hub(entry_points=False)


TWO = {
    "sources": [
        {
            "type": "python",
            "config": {"function": "tests.helpers:two_values", "objectives": ["c", "p"]},
        },
        {"type": "length", "config": {"target": 4}},
    ]
}


def test_demo_spec_from_readme() -> None:
    with rh.Pipeline.from_yaml(ROOT / "specs" / "demo.yaml", hub=hub()) as pipe:
        res = pipe.score([rh.Sample(prompt="Say hi", completion="hi there")])
    assert res.vector.objectives == ("brevity", "format", "politeness")
    assert res.vector.values.shape == (1, 3)
    assert res.total.shape == (1,)
    assert res.vector.reasons == ({},)
    # raw rewards, no batch z-score: one sample's total is its weighted rewards, not 0
    want = np.nansum(res.vector.values[0] * [0.5, 1.0, 1.0])
    assert res.total[0] == pytest.approx(want) and res.total[0] != 0.0


def test_weights_from_spec_sources_and_call() -> None:
    sample = [rh.Sample(prompt="pp", completion="abcdef")]  # c=6, p=2, brevity=-0.5
    spec = {**TWO, "aggregate": {"method": "weighted", "weights": {"c": 2.0}}}
    with rh.Pipeline(spec, hub=hub()) as pipe:
        assert pipe.score(sample).total.tolist() == [2 * 6 + 2 - 0.5]
        assert pipe.score(sample, weights={"p": 0.0, "brevity": 10}).total.tolist() == [12 - 5.0]
        with pytest.raises(rh.AggregationError, match=r"unknown objective\(s\) \['cc'\]"):
            pipe.score(sample, weights={"cc": 1})
    spec = {
        "sources": [{**TWO["sources"][0], "weight": {"p": 3}}, {**TWO["sources"][1], "weight": 0}]
    }
    with rh.Pipeline(spec, hub=hub()) as pipe:
        assert pipe.score(sample).total.tolist() == [6 + 3 * 2]


def test_attribution_per_sample() -> None:
    with rh.Pipeline(TWO, hub=hub()) as pipe:
        res = pipe.score([rh.Sample(prompt="pp", completion="abcdef")])
    assert res.diagnostics["per_sample"][0]["contributions"] == {
        "c": 6.0,
        "p": 2.0,
        "brevity": -0.5,
    }
    assert res.to_records()[0]["total"] == 7.5


def test_rename_order_and_lower_is_better() -> None:
    spec = {
        "objectives": ["brevity", {"name": "cost", "higher_is_better": False}, "p"],
        "sources": [{**TWO["sources"][0], "rename": {"c": "cost"}}, TWO["sources"][1]],
    }
    with rh.Pipeline(spec, hub=hub()) as pipe:
        res = pipe.score([rh.Sample(prompt="pp", completion="abcdef")])
    assert res.vector.objectives == ("brevity", "cost", "p")
    assert res.vector.values.tolist() == [[-0.5, -6.0, 2.0]]
    assert res.vector.sources == ("length", "python", "python")


@pytest.mark.parametrize("policy", ["unscorable", "renormalize", "fail", {"fill": -1.0}])
def test_not_applicable_cells_are_skipped_under_every_policy(policy: object) -> None:
    spec = {
        "sources": [
            {"type": "length", "config": {"target": 3, "scale": 1.0, "objective": "a"}},
            {
                "type": "python",
                "when": "metadata.math == true",
                "config": {"function": "tests.helpers:word_count", "objectives": ["b"]},
            },
        ],
        "on_abstain": policy,
    }
    samples = [
        rh.Sample(prompt="", completion="one two", metadata={"math": True}),
        rh.Sample(prompt="", completion="abcde"),
    ]
    with rh.Pipeline(spec, hub=hub()) as pipe:
        res = pipe.score(samples)
    assert res.vector.values[0].tolist() == [-4.0, 2.0] and res.total[0] == -2.0
    assert res.vector.column("a")[1] == -2.0 and math.isnan(res.vector.column("b")[1])
    assert res.vector.reasons[1] == {"python": "not applicable"}
    assert res.vector.not_applicable.tolist() == [[False, False], [False, True]]
    assert res.total[1] == -4.0  # scored on what applies: b's weight goes to a


def test_skip_is_rejected_naming_its_replacements() -> None:
    spec = {"sources": [{"type": "length"}], "on_abstain": "skip"}
    with pytest.raises(rh.SpecError, match="renormalize") as info:
        rh.Pipeline(spec, hub=hub())
    assert info.value.path == "on_abstain" and "unscorable" in str(info.value)


def test_fail_policy_raises_with_the_reason() -> None:
    spec = {
        "sources": [
            {"type": "length"},
            {"type": "python", "config": {"function": "tests.helpers:word_count"}},
        ],
        "on_abstain": "fail",
    }
    with rh.Pipeline(spec, hub=hub()) as pipe:
        pipe.score([rh.Sample(prompt="", completion="x")])  # values only: no error
        with pytest.raises(rh.AbstainError, match="sample 1: could not be scored .python: "):
            pipe.aggregate(
                rh.RewardBatch(
                    np.array([[1.0, 2.0], [1.0, np.nan]]),
                    ("brevity", "python"),
                    reasons=({}, {"python": "worker died"}),
                    sources=("length", "python"),
                )
            )


def test_state_round_trip(tmp_path: Path) -> None:
    with rh.Pipeline(TWO, hub=hub()) as pipe:
        pipe.save_state(tmp_path / "state.json")
        pipe.load_state(tmp_path / "state.json")
        assert pipe.state_dict()["aggregator"] == {}


def test_python_source_from_a_file_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "rewards.py").write_text(
        "def shout(s):\n    return float(s.completion.isupper())\n"
    )
    (tmp_path / "spec.yaml").write_text(
        "sources:\n  - type: python\n    config: {function: rewards.py:shout, objectives: [loud]}\n"
    )
    with rh.Pipeline.from_yaml(tmp_path / "spec.yaml", hub=hub()) as pipe:
        res = pipe.score(
            [rh.Sample(prompt="", completion="HI"), rh.Sample(prompt="", completion="hi")]
        )
    assert res.vector.column("loud").tolist() == [1.0, 0.0]


def test_python_source_batched_with_kwargs() -> None:
    spec = {
        "sources": [
            {
                "type": "python",
                "config": {
                    "function": "tests.helpers:two_values",
                    "objectives": ["a", "b"],
                    "kwargs": {"scale": 2},
                },
            },
            {
                "type": "python",
                "id": "batch",
                "config": {
                    "function": "tests.helpers:batched_len",
                    "batched": True,
                    "objectives": ["n"],
                },
            },
        ]
    }
    with rh.Pipeline(spec, hub=hub()) as pipe:
        res = pipe.score([rh.Sample(prompt="xy", completion="abc")])
    assert res.vector.values.tolist() == [[6.0, 4.0, 3.0]]


def test_zscore_normalisation_and_empty_batch() -> None:
    spec = {"sources": [TWO["sources"][1]], "normalize": {"method": "zscore"}}
    with rh.Pipeline(spec, hub=hub()) as pipe:
        res = pipe.score([rh.Sample(prompt="", completion="a" * n) for n in (4, 6, 8)])
        np.testing.assert_allclose(
            res.diagnostics["normalized"][:, 0], [1.2247449, 0, -1.2247449], atol=1e-6
        )
        empty = pipe.vector([])
        assert empty.values.shape == (0, 1)
