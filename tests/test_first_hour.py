"""The first hour of a new user: the traps of issue 22, one test each."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.batch_of_one import BatchOfOneWarning
from rewardhub.cli import build_app
from rewardhub.run_summary import number as _number

from .server_support import live

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

RULES: dict[str, Any] = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 10}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}
ZSCORED = {**RULES, "normalize": {"method": "zscore"}}


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return result.exit_code, result.output


@rh.reward_source("has_answer", objectives=["format"])
def has_answer(sample: rh.Sample) -> float:
    return float("\\boxed{" in sample.completion)


# -- the test kit and registration ---------------------------------------------------------------


def test_the_test_kit_imports_and_runs_without_pytest() -> None:
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None; sys.modules['_pytest'] = None\n"
        "import rewardhub as rh\n"
        "from rewardhub.testing import check_source, make_samples\n"
        "@rh.reward_source('kw', objectives=['kw'])\n"
        "def kw(s): return float('because' in s.completion)\n"
        "check_source(kw)\n"
        "print(len(make_samples(4)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_the_pytest11_entry_point_names_the_fixture_module() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'rewardhub = "rewardhub.testing.pytest_plugin"' in text
    import rewardhub.testing.pytest_plugin as plugin

    assert {"rewardhub_hub", "make_pipeline"} <= set(vars(plugin))


def test_a_decorated_function_registers_in_one_line() -> None:
    hub = rh.Hub(plugins=[has_answer], entry_points=False)
    with rh.Pipeline({"sources": [{"type": "has_answer"}]}, hub=hub) as pipe:
        res = pipe.score([rh.Sample("2+2?", "\\boxed{4}"), rh.Sample("2+2?", "four")])
    assert res.total.tolist() == [1.0, 0.0]
    (info,) = [p for p in hub.plugins() if "has_answer" in p.sources]
    assert info.name.endswith(":has_answer")


def test_the_hub_takes_aggregator_and_normalizer_classes() -> None:
    class Lowest(rh.Aggregator):
        method = "lowest"

        def aggregate(self, values: np.ndarray, ctx: rh.Context) -> rh.Aggregation:
            return rh.Aggregation(np.nanmin(values, axis=1))

    class Halve(rh.Normalizer):
        method = "halve"

        def transform(self, values: np.ndarray) -> np.ndarray:
            return values / 2

    hub = rh.Hub(plugins=[has_answer, Lowest, Halve], entry_points=False)
    assert "lowest" in hub.aggregators.names() and "halve" in hub.normalizers.names()
    grouped = rh.Hub(plugins=[rh.plugin_with(Lowest, Halve, name="mine")], entry_points=False)
    (mine,) = [p for p in grouped.plugins() if p.name == "mine"]
    assert mine.aggregators == ["lowest"] and mine.normalizers == ["halve"]
    with pytest.raises(TypeError, match="RewardSource, Aggregator or Normalizer"):
        rh.plugin_with(len)  # type: ignore[arg-type]


# -- Pipeline.score with mappings ----------------------------------------------------------------


def test_pipeline_score_accepts_dicts_like_the_server() -> None:
    with rh.Pipeline(RULES, hub=rh.Hub(entry_points=False)) as pipe:
        as_dicts = pipe.score([{"prompt": "q", "completion": "the answer"}, {"completion": "no"}])
        as_samples = pipe.score([rh.Sample("q", "the answer"), rh.Sample("", "no")])
        np.testing.assert_array_equal(as_dicts.total, as_samples.total)
        with pytest.raises(rh.InputError, match=r"samples\[1\]: missing field 'completion'"):
            pipe.score([{"completion": "x"}, {"prompt": "q"}])
        with pytest.raises(rh.InputError, match="wrap it in a list"):
            pipe.score({"prompt": "q", "completion": "x"})  # type: ignore[arg-type]


# -- one sample ----------------------------------------------------------------------------------


def test_demo_spec_gives_one_sample_a_meaningful_total() -> None:
    with rh.Pipeline.from_yaml(ROOT / "specs" / "demo.yaml") as pipe:
        polite = pipe.score([{"prompt": "Say hi", "completion": "Hi! Glad to help, please ask."}])
        curt = pipe.score([{"prompt": "Say hi", "completion": "hi"}])
        weighted = pipe.score(
            [{"prompt": "Say hi", "completion": "Hi! Glad to help, please ask."}],
            weights={"politeness": 2.0},
        )
    assert polite.total[0] > curt.total[0]  # each scored alone, and still told apart
    assert weighted.total[0] > polite.total[0]  # per-call weights have an effect
    assert "batch_of_one" not in polite.diagnostics


def test_a_batch_relative_method_on_one_sample_warns_once() -> None:
    with rh.Pipeline(ZSCORED, hub=rh.Hub(entry_points=False)) as pipe:
        with pytest.warns(BatchOfOneWarning, match="zscore' saw a batch of one sample"):
            res = pipe.score([rh.Sample("q", "the answer")])
        assert res.diagnostics["batch_of_one"] == [
            "normalize method 'zscore' saw a batch of one sample"
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = pipe.score([rh.Sample("q", "no")])  # said once per pipeline
            pair = pipe.score([rh.Sample("q", "the answer"), rh.Sample("q", "no")])
        assert again.diagnostics["batch_of_one"] and "batch_of_one" not in pair.diagnostics
    grouped = {**RULES, "normalize": {"method": "zscore", "per": "group"}}
    with (
        rh.Pipeline(grouped, hub=rh.Hub(entry_points=False)) as pipe,
        pytest.warns(BatchOfOneWarning, match="group of one"),
    ):
        pipe.score([rh.Sample("a", "x"), rh.Sample("a", "y"), rh.Sample("b", "z")])


def test_records_say_which_values_the_total_came_from() -> None:
    samples = [rh.Sample("q", "the answer"), rh.Sample("q", "no")]
    with rh.Pipeline(RULES, hub=rh.Hub(entry_points=False)) as pipe:
        assert pipe.total_from == "rewards"
        assert all("normalized" not in r for r in pipe.score(samples).to_records())
    with rh.Pipeline(ZSCORED, hub=rh.Hub(entry_points=False)) as pipe:
        assert pipe.total_from == "rewards normalised by zscore per batch"
        recs = pipe.score(samples).to_records()
    for rec in recs:
        assert rec["total"] == pytest.approx(sum(rec["normalized"].values()))
        assert rec["normalized"] != rec["rewards"]


def test_server_says_what_the_total_is_and_warns_on_a_lone_sample() -> None:
    with rh.Pipeline(ZSCORED, hub=rh.Hub(entry_points=False)) as pipe, live(pipe) as url:
        with pytest.warns(BatchOfOneWarning):
            body = httpx.post(
                f"{url}/v1/score", json={"samples": [{"completion": "the answer"}]}
            ).json()
        assert body["total_from"] == "rewards normalised by zscore per batch"
        assert "batch of one" in body["warnings"][0]
        pair = [{"completion": "the answer"}, {"completion": "no"}]
        body = httpx.post(f"{url}/v1/score", json={"samples": pair}).json()
        assert "warnings" not in body
        records = body["results"]
        refused = httpx.post(f"{url}/v1/aggregate", json={"results": records})
        assert refused.status_code == 422 and refused.json()["error"].startswith("normalize:")
        again = httpx.post(
            f"{url}/v1/aggregate", json={"results": records, "normalize": True}
        ).json()
        assert [r["total"] for r in again["results"]] == [r["total"] for r in records]
        raw = httpx.post(
            f"{url}/v1/aggregate", json={"results": records, "normalize": False}
        ).json()
        assert raw["total_from"] == "rewards"
        want = [sum(v for v in r["rewards"].values()) for r in records]
        assert [r["total"] for r in raw["results"]] == pytest.approx(want)


def test_server_names_a_body_that_is_not_json() -> None:
    with rh.Pipeline(RULES, hub=rh.Hub(entry_points=False)) as pipe, live(pipe) as url:
        got = httpx.post(
            f"{url}/v1/score", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert got.status_code == 422
    error = got.json()["error"]
    # named as the body, with the parser's reason and the fix; never as an item "[0]"
    assert error.startswith("body: not valid JSON") and "[0]" not in error
    assert "line 1 column 2" in error and "Content-Type: application/json" in error


# -- the command line ----------------------------------------------------------------------------


def test_version() -> None:
    code, out = run("--version")
    assert code == 0 and out.strip() == f"rewardhub {rh.__version__}"


def test_plugins_prints_square_brackets_as_written() -> None:
    code, out = run("plugins")
    assert code == 0 and "clip to [min, max]" in out


def test_fresh_cache_help_says_what_it_does() -> None:
    _, out = run("score", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert "a --cache you name is otherwise kept" in text
    assert "never done to a --cache" not in text


def test_score_reads_the_reference_from_the_adapters_columns(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "sources": [
                    {
                        "type": "python",
                        "config": {
                            "function": f"{ROOT / 'tests' / 'helpers.py'}:matches_reference",
                            "objectives": ["correct"],
                        },
                    }
                ]
            }
        )
    )
    data = tmp_path / "in.jsonl"
    lines = [
        {"prompt": "2+2?", "completion": "4", "answer": "4"},  # GSM8K
        {"prompt": "2+2?", "completion": "4", "ground_truth": "5"},  # verl
        {"prompt": "2+2?", "completion": "4", "gold": "4"},
    ]
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out = run("score", spec, data, "-o", tmp_path / "out.jsonl")
    assert code == 0, out
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["rewards"]["correct"] for r in rows] == [1.0, 0.0, None]
    assert rows[0]["answer"] == "4"  # the line's own fields are written back as they were
    code, out = run("score", spec, data, "-o", tmp_path / "gold.jsonl", "--reference-field", "gold")
    rows = [json.loads(x) for x in (tmp_path / "gold.jsonl").read_text().splitlines()]
    assert [r["rewards"]["correct"] for r in rows] == [None, None, 1.0]


def test_summary_shows_rounding_noise_as_zero() -> None:
    assert _number(-1.586e-16, -1.2, 1.3) == "0"
    assert _number(1e-9, 0.0, 1e-8) == "1e-09"  # small, but on the column's scale
    assert _number(0.12345, 0.0, 1.0) == "0.1235"


def test_serve_reports_a_missing_extra_before_saying_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    code, out = run("serve", ROOT / "specs" / "demo.yaml")
    assert code == 1
    assert "rewardhub[server]" in out and "serving" not in out


def test_pareto_plot_without_matplotlib_fails_before_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored = tmp_path / "s.jsonl"
    scored.write_text('{"rewards": {"a": 1, "b": 2}}\n{"rewards": {"a": 2, "b": 1}}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out = run("pareto", scored, "--plot", tmp_path / "p.png")
    assert code == 1 and "rewardhub[plot]" in out and "hypervolume" not in out


def test_pareto_says_why_points_are_left_out_of_the_hypervolume(tmp_path: Path) -> None:
    scored = tmp_path / "s.jsonl"
    scored.write_text(
        '{"rewards": {"a": 1, "b": 2, "code": null}}\n{"rewards": {"a": 2, "b": 1, "code": null}}\n'
    )
    code, out = run("pareto", scored)
    text = " ".join(out.split())
    assert code == 0 and "hypervolume 0" in text
    assert "2 of 2 points have no value for code (2)" in text and "--objectives" in text


def test_examples_report_a_missing_extra_before_any_output() -> None:
    code = (
        "import runpy, sys\n"
        "sys.modules['matplotlib'] = None\n"
        f"runpy.run_path({str(ROOT / 'examples' / 'aggregation_pareto.py')!r}, run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0 and out.stdout == ""
    assert "rewardhub[plot]" in out.stderr


def test_the_cvxpy_solver_is_an_extra_checked_when_the_pipeline_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    spec = {**RULES, "aggregate": {"method": "robust", "solver": "cvxpy"}}
    with pytest.raises(rh.MissingExtraError, match=r"rewardhub\[solver\]"):
        rh.Pipeline(spec, hub=rh.Hub(entry_points=False))
    from rewardhub.aggregate import robust_weights

    with pytest.raises(rh.MissingExtraError, match=r"rewardhub\[solver\]"):
        robust_weights(np.eye(2), 1.0, solver="cvxpy")
    assert "cvxpy" not in (ROOT / "pyproject.toml").read_text().split("[project.optional")[0]
    assert math.isfinite(robust_weights(np.eye(2), 1.0)[0])


def test_validate_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n"
        "  - {type: lenght}\n"
        "  - {type: regex, config: {patern: x}}\n"
        "normalize: {method: zcore}\n"
        "aggregate: {method: weighted}\n"
    )
    code, out = run("validate", bad)
    text = " ".join(out.split())
    assert code == 1 and "3 problems" in text
    for where in ("sources[0].type", "sources[1].config.patern", "normalize.method"):
        assert where in text
    code, out = run("validate", ROOT / "specs" / "demo.yaml")
    assert code == 0 and "ok" in out


def test_score_output_says_what_the_total_came_from(tmp_path: Path) -> None:
    spec = tmp_path / "z.json"
    spec.write_text(json.dumps(ZSCORED))
    data = tmp_path / "in.jsonl"
    data.write_text('{"completion": "the answer"}\n{"completion": "no"}\n')
    assert run("score", spec, data, "-o", tmp_path / "z.jsonl")[0] == 0
    zscored = [json.loads(x) for x in (tmp_path / "z.jsonl").read_text().splitlines()]
    assert all("normalized" in r and r["normalized"] != r["rewards"] for r in zscored)
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(RULES))
    # a scored file read again: its stale `normalized` is dropped like its `rewards`
    assert run("score", raw, tmp_path / "z.jsonl", "-o", tmp_path / "raw.jsonl")[0] == 0
    again = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert all("normalized" not in r for r in again)
