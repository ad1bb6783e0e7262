"""rewardhub.evaluate: the numbers of an evaluation on preference pairs, and `rewardhub eval`."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import build_app
from rewardhub.evaluate import (
    PreferencePair,
    accuracy,
    agreement_matrix,
    calibration,
    evaluate,
    pair_outcomes,
    read_pairs,
    spearman_matrix,
    win_probability,
)

runner = CliRunner()


def chars(sample: rh.Sample) -> float:
    """Longer is better (a stand-in reward model)."""
    return float(len(sample.completion))


def checker(sample: rh.Sample) -> Any:
    """'FAIL' in the answer fails the check; 'DOWN' means the machinery could not score it."""
    if "FAIL" in sample.completion:
        return rh.Fail("bad answer")
    if "DOWN" in sample.completion:
        return rh.Abstain("judge did not answer")
    return 1.0 if "yes" in sample.completion else 0.0


SPEC: dict[str, Any] = {
    "objectives": ["long", "right"],
    "sources": [
        {
            "id": "rm",
            "type": "python",
            "config": {"function": f"{__name__}:chars", "objectives": ["long"]},
        },
        {
            "id": "check",
            "type": "python",
            "config": {"function": f"{__name__}:checker", "objectives": ["right"]},
            "when": "metadata.user != skip",
        },
    ],
    "normalize": "none",
    "aggregate": {"method": "weighted"},
}


def pipe() -> rh.Pipeline:
    return rh.Pipeline(SPEC, hub=rh.Hub(entry_points=False))


# -- the metrics -------------------------------------------------------------------------------


def test_pair_outcomes_count_ties_as_half_and_nan_as_unscored() -> None:
    out = pair_outcomes(np.array([2.0, 1.0, 1.0, np.nan]), np.array([1.0, 1.0, 3.0, 0.0]))
    assert out[:3].tolist() == [1.0, 0.5, 0.0] and math.isnan(out[3])


def test_accuracy_on_scored_and_on_all_pairs() -> None:
    o = np.array([1.0] * 6 + [0.5] * 2 + [0.0] * 2 + [np.nan] * 2)
    a = accuracy(o, resamples=4000, seed=1)
    assert a.scored == pytest.approx(7 / 10) and a.all == pytest.approx(7 / 12)
    assert (a.n_scored, a.n_pairs, a.ties) == (10, 12, 2)
    assert a.scored_ci[0] < a.scored < a.scored_ci[1]
    assert a.all_ci[0] < a.all < a.all_ci[1] and a.all_ci[1] < a.scored_ci[1]
    empty = accuracy(np.array([np.nan]))
    assert math.isnan(empty.scored) and empty.all == 0.0


def test_the_multinomial_bootstrap_matches_resampling_the_pairs() -> None:
    """Resampling the three counts is resampling the pairs: the same interval, to the noise."""
    rng = np.random.default_rng(0)
    o = rng.choice([0.0, 0.5, 1.0], size=300, p=[0.3, 0.1, 0.6])
    fast = accuracy(o, resamples=20000, seed=3).scored_ci
    idx = rng.integers(0, o.size, size=(20000, o.size))
    slow = np.percentile(o[idx].mean(axis=1), [2.5, 97.5])
    assert fast == pytest.approx(tuple(slow), abs=0.006)


def test_spearman_matrix_agrees_with_scipy_pairwise() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 3))
    v[:, 1] += v[:, 0]
    v[[3, 7], 2] = np.nan
    m = spearman_matrix(v)
    assert m[0, 1] == pytest.approx(spearmanr(v[:, 0], v[:, 1]).statistic)
    ok = ~np.isnan(v[:, 2])
    assert m[0, 2] == pytest.approx(spearmanr(v[ok, 0], v[ok, 2]).statistic)
    assert np.diag(m) == pytest.approx([1.0, 1.0, 1.0])
    assert np.isnan(spearman_matrix(np.ones((5, 2)))[0, 1])  # constant column: undefined


def test_agreement_counts_same_verdicts_over_pairs_both_scored() -> None:
    o = np.array([[1.0, 1.0], [1.0, 0.0], [0.5, 0.5], [np.nan, 1.0]])
    m = agreement_matrix(o)
    assert m[0, 1] == pytest.approx(2 / 3) and m[1, 1] == 1.0


def test_calibration_reliability_and_ece() -> None:
    # confident and right: 0.9 four times, right 4 of 4 → |1 − 0.9|; 0.6 (as 0.4 for the other
    # side) twice, right once → |0.5 − 0.6|
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.4])
    cal = calibration(p)
    assert cal.n == 6
    assert cal.ece == pytest.approx(4 / 6 * 0.1 + 2 / 6 * 0.1 + 0)
    filled = [b for b in cal.bins if b[2]]
    assert [b[2] for b in filled] == [2, 4]
    assert win_probability(np.array([1.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]))[
        0
    ] == pytest.approx(1.0)
    assert win_probability(np.array([1.0]), np.array([1.0]), np.array([0.0]), np.array([0.0]))[
        0
    ] == pytest.approx(0.841344746)


# -- reading pairs -----------------------------------------------------------------------------


def test_pairs_from_strings_chat_messages_and_trl_conversations(tmp_path: Path) -> None:
    rows = [
        {"prompt": "q", "chosen": "a", "rejected": "b", "subset": "s", "user": "u1"},
        {
            "prompt": [{"role": "user", "content": "q"}],
            "chosen": "a",
            "rejected": "b",
            "label": {"long": "rejected", "right": "tie"},
        },
        {  # TRL's implicit prompt: the shared messages before the answers
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "b"}],
        },
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    pairs = read_pairs(path)
    assert pairs[0].user == "u1" and pairs[0].samples()[0].metadata == {"user": "u1"}
    assert pairs[1].labels == {"long": "rejected", "right": "tie"}
    assert pairs[2].prompt == [{"role": "user", "content": "hi"}]
    assert (pairs[2].chosen, pairs[2].rejected) == ("a", "b")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
        ({"chosen": "a", "rejected": 3}, "field 'rejected' must be a string"),
        ({"chosen": "a", "rejected": "b", "label": {"x": "better"}}, 'label.x is "better"'),
        ({"chosen": "a", "rejected": "b", "label": "chosen"}, "field 'label' must be an object"),
        ({"chosen": "a", "rejected": "b", "subset": 3}, "field 'subset' must be a string"),
        (
            {
                "chosen": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "a"}],
                "rejected": [
                    {"role": "user", "content": "y"},
                    {"role": "assistant", "content": "b"},
                ],
            },
            "start with different messages",
        ),
    ],
)
def test_bad_pairs_name_the_field_and_the_row(row: dict[str, Any], message: str) -> None:
    with pytest.raises(rh.InputError, match="row 7") as info:
        PreferencePair.from_dict(row, "row 7")
    assert message in str(info.value)


def test_pairs_from_a_saved_datasets_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": "q", "chosen": "aa", "rejected": "b", "subset": "hep-go"}] * 3
    datasets.DatasetDict(
        {"filtered": datasets.Dataset.from_list(rows), "raw": datasets.Dataset.from_list(rows[:1])}
    ).save_to_disk(str(tmp_path / "rb"))
    with pytest.raises(rh.InputError, match="choose a split with --split"):
        read_pairs(tmp_path / "rb")
    assert len(read_pairs(tmp_path / "rb", split="filtered")) == 3
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "one"))
    assert read_pairs(tmp_path / "one")[0].subset == "hep-go"
    with pytest.raises(rh.InputError, match="REWARDHUB_ALLOW_DOWNLOAD"):  # never downloads
        read_pairs("hf:rewardhub-test/no-such-dataset")


# -- evaluating a pipeline ---------------------------------------------------------------------


PAIRS = [
    # long: the chosen side is longer except one tie; right: one fails, one is down, one n/a
    PreferencePair("q1", "yes, long answer", "no", "alpacaeval-easy"),
    PreferencePair("q2", "yes!", "no..", "alpacaeval-easy"),  # tie on length
    PreferencePair("q3", "FAIL FAIL FAIL", "no", "hep-go"),  # fails the check: scored 0 = tie
    PreferencePair("q4", "DOWN and long", "no", "hep-go"),  # right: unscorable
    PreferencePair("q5", "yes but long", "no", "hep-go", user="skip"),  # right: not applicable
    PreferencePair("q6", "y", "no yes", "math-prm", labels={"long": "rejected"}),
]


def test_evaluate_counts_every_outcome_and_labels() -> None:
    with pipe() as p:
        res = evaluate(p, PAIRS, chunk_size=4, resamples=500)
    acc, cov = res.accuracy, res.coverage
    # long: 1, ½, 1, 1, 1, and pair 6 labelled "rejected" (the rejected is longer: right)
    assert acc["long"]["accuracy_scored"] == pytest.approx(5.5 / 6)
    # right: 1, 1, FAIL (scored 0) vs 0 = ½, unscorable, n/a, 0 ("y" vs "no yes")
    assert acc["right"]["n_scored"] == 4 and acc["right"]["n_pairs"] == 6
    assert acc["right"]["accuracy_scored"] == pytest.approx(2.5 / 4)
    assert acc["right"]["accuracy_all"] == pytest.approx(2.5 / 6)
    assert cov["right"] == pytest.approx(
        {"scored": 4 / 6, "not_applicable": 1 / 6, "failed": 1 / 6, "unscorable": 1 / 6}
    )
    assert cov["total"]["unscorable"] == pytest.approx(1 / 6)  # only the down judge
    assert acc["total"]["n_scored"] == 5
    assert set(res.subsets["long"]) == {"alpacaeval-easy", "hep-go", "math-prm"}
    # RewardBench subsets: its sections (Chat from alpacaeval-easy; Reasoning weighted)
    secs = res.sections["long"]["scored"]
    assert secs["Chat"] == pytest.approx(0.75)
    w = {"hep-go": 164, "math-prm": 984}
    assert secs["Reasoning"] == pytest.approx((1.0 * w["hep-go"] + 1.0 * w["math-prm"]) / 1148)
    assert res.agreement["names"] == ["long", "right", "total"]
    assert res.spearman["names"] == ["long", "right", "total"]
    assert res.calibration == {}  # no source gives a spread
    doc = json.loads(json.dumps(res.to_dict()))  # JSON-ready: no NaN
    assert doc["pairs"] == 6


def test_tie_labels_leave_the_pair_out_of_that_objective() -> None:
    pairs = [
        PreferencePair("q", "long one", "x", labels={"long": "tie"}),
        PreferencePair("q", "long one", "x"),
    ]
    with pipe() as p:
        res = evaluate(p, pairs, resamples=200)
    assert res.accuracy["long"]["n_pairs"] == 1 and res.accuracy["total"]["n_pairs"] == 2


class Spread(rh.RewardSource):
    """A 'judge' with a spread: mean = length, std = 1."""

    type = "spread"
    objectives = ("judged",)

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        vals = np.array([[float(len(s.completion))] for s in samples])
        return rh.ScoresWithStd(vals, np.ones_like(vals))


@rh.hookimpl
def register_sources(registry: Any) -> None:
    registry.add(Spread)


def test_calibration_from_the_std_of_each_side() -> None:
    import sys

    spec = {"sources": [{"id": "j", "type": "spread"}], "normalize": "none"}
    pairs = [PreferencePair("q", "a" * n, "a" * 2, "") for n in (1, 3, 4, 6, 2)]
    hub = rh.Hub(plugins=[sys.modules[__name__]], entry_points=False)
    with rh.Pipeline(spec, hub=hub) as p:
        res = evaluate(p, pairs, resamples=200)
    cal = res.calibration["judged"]
    assert cal["n"] == 5 and 0 <= cal["ece"] <= 0.5
    assert sum(b["count"] for b in cal["bins"]) == 5


# -- RewardBench's own scoring code ---------------------------------------------------------------


def _rewardbench() -> tuple[Any, Any]:
    """RewardBench's constants module and its ``calculate_scores_per_section``.

    The package (0.1.4, installed with --no-deps by ``make test``) cannot be imported whole
    here: its ``__init__`` loads model wrappers written for transformers 4.51. Its constants
    module imports nothing, so it loads from its file; the section scoring function is compiled
    from its own source in ``rewardbench/utils.py`` (the module's other imports are not needed
    by it).
    """
    import ast
    import importlib.util

    spec = importlib.util.find_spec("rewardbench")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rewardbench is not installed (make test installs it with --no-deps)")
    root = Path(next(iter(spec.submodule_search_locations)))
    cspec = importlib.util.spec_from_file_location("_rb_constants", root / "constants.py")
    assert cspec is not None and cspec.loader is not None
    constants = importlib.util.module_from_spec(cspec)
    cspec.loader.exec_module(constants)
    tree = ast.parse((root / "utils.py").read_text(encoding="utf-8"))
    fn = next(
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name == "calculate_scores_per_section"
    )
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module([fn], []), str(root / "utils.py"), "exec"), namespace)
    return constants, namespace["calculate_scores_per_section"]


def test_rewardbench_constants_are_rewardbench_s() -> None:
    from rewardhub.evaluate import rewardbench as ours

    constants, _ = _rewardbench()
    assert ours.EXAMPLE_COUNTS == constants.EXAMPLE_COUNTS
    assert {k: list(v) for k, v in ours.SECTIONS.items()} == constants.SUBSET_MAPPING


def test_accuracies_match_rewardbench_on_the_same_scores() -> None:
    """Per-pair scores → RewardBench's per-subset accuracy (its run_rm rule: 1 if chosen >
    rejected else 0, mean per subset) and its section scores, against ours through the whole
    evaluate path. No ties here: RewardBench's classifier path counts a tie as wrong, its
    generative path as ½ (what we do)."""
    constants, per_section = _rewardbench()
    rng = np.random.default_rng(7)
    subsets = list(constants.EXAMPLE_COUNTS)
    pairs, chosen_len, rejected_len = [], [], []
    for i in range(600):
        s = subsets[i % len(subsets)]
        c, r = rng.choice(40, size=2, replace=False) + 1
        pairs.append(PreferencePair(f"q{i}", "x" * int(c), "y" * int(r), s))
        chosen_len.append(float(c))
        rejected_len.append(float(r))
    spec = {
        "sources": [{"id": "rm", "type": "python", "config": {"function": f"{__name__}:chars"}}]
    }
    with rh.Pipeline({**spec, "normalize": "none"}, hub=rh.Hub(entry_points=False)) as p:
        res = evaluate(p, pairs, resamples=200)
    # RewardBench's computation, on the same per-pair scores
    results = [1 if c > r else 0 for c, r in zip(chosen_len, rejected_len)]
    grouped: dict[str, float] = {}
    for s in sorted(set(subsets)):
        sel = [x for x, p in zip(results, pairs) if p.subset == s]
        grouped[s] = sum(sel) / len(sel)
    theirs = per_section(constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING, grouped)
    assert res.accuracy["python"]["accuracy_all"] == pytest.approx(sum(results) / len(results))
    for s, v in grouped.items():
        assert res.subsets["python"][s]["accuracy_all"] == pytest.approx(v)
    ours = res.sections["python"]["all"]
    for section, v in theirs.items():
        assert ours[section] == pytest.approx(v)


# -- the command -------------------------------------------------------------------------------


def test_eval_command_json_output_and_cache(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(SPEC))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(
            json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})
            for p in PAIRS
        )
    )
    out = tmp_path / "eval.json"
    app = build_app(rh.Hub(entry_points=False))
    res = runner.invoke(app, ["eval", str(spec), str(pairs), "-o", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert "pairwise accuracy" in res.output and "Spearman" in res.output
    doc = json.loads(out.read_text())
    assert doc["pairs"] == 6 and doc["spec"] == str(spec)
    assert (tmp_path / "eval.json.cache.sqlite").exists()
    res = runner.invoke(app, ["eval", str(spec), str(pairs), "--json", "--resamples", "200"])
    assert json.loads(res.stdout)["accuracy"] == doc["accuracy"]


def test_eval_command_refuses_bad_input(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(SPEC))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a"}\n')
    app = build_app(rh.Hub(entry_points=False))
    res = runner.invoke(app, ["eval", str(spec), str(bad)])
    assert res.exit_code == 2 and "bad.jsonl: line 1: missing field 'rejected'" in res.output
    res = runner.invoke(app, ["eval", str(spec), str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "cannot read" in res.output


def test_small_helpers_in_itertools_sense() -> None:
    """pair_outcomes is antisymmetric: swapping the sides turns 1 into 0 and keeps ½."""
    a = np.array([1.0, 2.0, 2.0])
    for x, y in itertools.permutations(range(3), 2):
        o1 = pair_outcomes(a[[x]], a[[y]])[0]
        o2 = pair_outcomes(a[[y]], a[[x]])[0]
        assert o1 + o2 == 1.0


def test_the_docs_example_runs() -> None:
    from tests.conftest import doc_example

    doc_example("evaluation.md", "eval")
