from __future__ import annotations

import json
from pathlib import Path

import pytest

import rewardhub as rh
from rewardhub.schema import pipeline_schema
from rewardhub.spec import parse_spec
from rewardhub.when import Condition

ROOT = Path(__file__).resolve().parent.parent

BAD_SPECS = [
    # (spec, path the error must name, words the message must contain)
    ({}, "sources", "required field is missing"),
    ({"sources": []}, "sources", "at least 1 item"),
    ({"sources": [{"type": "lenght"}]}, "sources[0].type", "Did you mean 'length'"),
    ({"sources": [{"type": "length", "timeout_s": -1}]}, "sources[0].timeout_s", "greater than 0"),
    (
        {"sources": [{"type": "length", "timout_s": 3}]},
        "sources[0].timout_s",
        "did you mean 'timeout_s'",
    ),
    (
        {"sources": [{"type": "length"}, {"type": "regex", "config": {"pattern": "(unclosed"}}]},
        "sources[1].config.pattern",
        "invalid regular expression",
    ),
    (
        {"sources": [{"type": "length", "config": {"target": "long"}}]},
        "sources[0].config.target",
        "valid integer",
    ),
    (
        {"sources": [{"type": "length", "config": {"trget": 3}}]},
        "sources[0].config.trget",
        "did you mean 'target'",
    ),
    ({"sources": [{"type": "length"}, {"type": "length"}]}, "sources", "give each an 'id'"),
    (
        {"sources": [{"type": "length"}, {"type": "length", "id": "l2"}]},
        "sources",
        "objective 'brevity' is produced by both 'length' and 'l2'; rename one",
    ),
    (
        {"sources": [{"type": "length"}], "on_abstain": "ignore"},
        "on_abstain",
        "'renormalize' or 'fail'",
    ),
    (
        {"sources": [{"type": "length"}], "on_abstain": "skip"},
        "on_abstain",
        "'renormalize' for the old",
    ),
    (
        {"sources": [{"type": "length"}], "aggregate": {"method": "maxmn"}},
        "aggregate.method",
        "unknown aggregator 'maxmn'",
    ),
    (
        {"sources": [{"type": "length"}], "aggregate": {"weights": {"brevty": 1}}},
        "aggregate.weights",
        "unknown objective(s) ['brevty']",
    ),
    (
        {"sources": [{"type": "length"}], "objectives": ["brevity", "helpful"]},
        "objectives",
        "['helpful'] declared but no source produces them",
    ),
    (
        {"sources": [{"type": "length", "rename": {"length": "x"}}]},
        "sources[0].rename",
        "does not produce",
    ),
    (
        {"sources": [{"type": "length", "when": "metadata.x in [a"}]},
        "sources[0].when",
        "cannot parse condition",
    ),
    (
        {"sources": [{"type": "python", "config": {"function": "no_colon"}}]},
        "sources[0].config.function",
        "is not 'module:function'",
    ),
    (
        {"sources": [{"type": "python", "config": {"function": "tests.helpers:missing"}}]},
        "sources[0]",
        "has no callable named 'missing'",
    ),
    (
        {
            "sources": [{"type": "length", "weight": 2}],
            "aggregate": {"method": "weighted", "weights": 3},
        },
        "aggregate.weights",
        "valid dictionary",
    ),
]


@pytest.mark.parametrize(("spec", "path", "words"), BAD_SPECS, ids=[p for _, p, _ in BAD_SPECS])
def test_bad_spec_names_the_path_and_the_fix(spec: dict, path: str, words: str) -> None:
    with pytest.raises(rh.SpecError) as info:
        rh.Pipeline(spec, hub=rh.Hub(entry_points=False))
    assert info.value.path == path, str(info.value)
    assert words in str(info.value)


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(rh.SpecError) as info:
        rh.Pipeline(
            {"sources": [{"type": "length", "batch_size": 0, "concurrency": 0}]},
            hub=rh.Hub(entry_points=False),
        )
    text = str(info.value)
    assert (
        "2 problems" in text
        and "sources[0].batch_size" in text
        and "sources[0].concurrency" in text
    )


def test_yaml_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - type: length\n   config: {}\n")
    with pytest.raises(rh.SpecError, match=r"bad.yaml: invalid YAML at line 3"):
        rh.Pipeline.from_yaml(bad)
    with pytest.raises(rh.SpecError, match="cannot read spec file"):
        rh.Pipeline.from_yaml(tmp_path / "missing.yaml")


def test_json_and_dict_and_model_specs_are_equivalent(tmp_path: Path) -> None:
    spec = {"sources": [{"type": "length", "config": {"target": 3}}], "normalize": "none"}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    sample = [rh.Sample(prompt="", completion="abcdef")]
    hub = rh.Hub(entry_points=False)
    a = rh.Pipeline.from_yaml(tmp_path / "s.json", hub=hub).score(sample).total
    b = rh.Pipeline.from_spec(spec, hub=hub).score(sample).total
    c = rh.Pipeline(rh.PipelineSpec.model_validate(spec), hub=hub).score(sample).total
    assert a.tolist() == b.tolist() == c.tolist() == [-1.0]


@pytest.mark.parametrize(
    ("cond", "meta", "expected"),
    [
        ("metadata.data_source in [gsm8k, math]", {"data_source": "math"}, True),
        ("metadata.data_source in [gsm8k, math]", {"data_source": "chat"}, False),
        ("metadata.data_source in [gsm8k, math]", {}, False),
        ("metadata.data_source not in [gsm8k]", {"data_source": "chat"}, True),
        ('metadata.src == "openai/gsm8k"', {"src": "openai/gsm8k"}, True),
        ("metadata.level >= 3 and not metadata.skip", {"level": 4}, True),
        ("metadata.level >= 3 and not metadata.skip", {"level": 4, "skip": True}, False),
        ("metadata.level >= 3", {"level": None}, False),
        ("metadata.a.b == -1", {"a": {"b": -1}}, True),
        ("reference != null", {}, False),
        ("metadata.flag == true or metadata.x == 1.5", {"x": 1.5}, True),
        ("metadata.flag", {"flag": 1}, True),
    ],
)
def test_when_conditions(cond: str, meta: dict, expected: bool) -> None:
    assert Condition.parse(cond)(rh.Sample(prompt="p", completion="c", metadata=meta)) is expected


@pytest.mark.parametrize(
    "cond", ["__import__('os')", "metadata.x + 1", "completion.x == 1", "lambda: 1"]
)
def test_when_rejects_anything_but_comparisons(cond: str) -> None:
    with pytest.raises(ValueError):
        Condition.parse(cond)


def test_checked_in_schema_is_current() -> None:
    """Regenerate with: rewardhub schema -o specs/pipeline.schema.json (built-ins only)."""
    current = pipeline_schema(rh.Hub(entry_points=False))
    stored = json.loads((ROOT / "specs" / "pipeline.schema.json").read_text())
    assert stored == current, "specs/pipeline.schema.json is stale: run `make schema`"


def test_schema_validates_the_shipped_specs_and_rejects_bad_configs() -> None:
    import jsonschema
    import yaml

    schema = pipeline_schema(rh.Hub(entry_points=False))
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message}"
    bad = {"sources": [{"type": "length", "config": {"target": "x"}}]}
    assert list(validator.iter_errors(bad))
    bad_agg = {"sources": [{"type": "length"}], "aggregate": {"method": "weighted", "nope": 1}}
    assert list(validator.iter_errors(bad_agg))


def test_base_dir_lives_in_the_spec_layer(tmp_path: Path) -> None:
    """Relative paths resolve against the spec file's folder, set by the spec layer (not by
    the python source, which every path-taking source and the CLI used to import)."""
    import rewardhub.sources.python as python_source
    from rewardhub.spec import base_dir

    assert python_source.base_dir is base_dir  # one variable, owned by the spec layer
    (tmp_path / "rewards.py").write_text("def one(sample):\n    return 1.0\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("sources:\n  - type: python\n    config: {function: rewards.py:one}\n")
    assert base_dir.get() is None
    with rh.Pipeline.from_yaml(spec, hub=rh.Hub(entry_points=False)) as pipe:
        assert pipe.score([rh.Sample(prompt="p", completion="c")]).total.tolist() == [1.0]
    assert base_dir.get() is None  # reset after loading


@pytest.mark.parametrize(
    ("cond", "words"),
    [
        (
            "metdata.kind == 'math'",
            "unknown name 'metdata' in 'metdata.kind'; did you mean 'metadata'?",
        ),
        ("completoin != null", "unknown name 'completoin'; did you mean 'completion'?"),
        ("not refrence", "unknown name 'refrence'; did you mean 'reference'?"),
        ("metadata.kind == math and promt == x", "did you mean 'prompt'?"),
        ("gsm8k == math", "compares no sample field"),
    ],
)
def test_when_typos_are_spec_errors_not_constants(cond: str, words: str) -> None:
    spec = {"sources": [{"type": "length"}, {"type": "length", "id": "b", "when": cond}]}
    with pytest.raises(rh.SpecError) as err:
        rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False))
    assert err.value.path == "sources[1].when"
    for part in words.split("; "):
        assert part.replace("'completoin';", "'completoin'") in str(err.value)


@pytest.mark.parametrize(
    "cond",
    [
        "not " * 5000 + "completion",
        "not " * 60 + "completion",
        "(" * 5000 + "completion" + ")" * 5000,
    ],
    ids=["5000 nots", "60 nots", "5000 parentheses"],
)
def test_when_deep_nesting_is_a_clear_error(cond: str) -> None:
    spec = {"sources": [{"type": "length", "when": cond}]}
    with pytest.raises(rh.SpecError, match="nested") as err:
        rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False))
    assert len(str(err.value)) < 400  # the 10 000-character condition is not echoed whole


def test_when_quoted_values_and_plain_words_still_work() -> None:
    sample = rh.Sample(prompt="p", completion="c", metadata={"kind": "prompts"})
    assert Condition.parse("metadata.kind == 'prompts'")(sample)
    assert Condition.parse("metadata.kind in [math, code, prompts2]")(sample) is False
    assert Condition.parse(" and ".join(["completion"] * 5000))(sample)


def _plugin_nesting(type_name: str, rule: type) -> object:
    from pydantic import BaseModel

    class Config(BaseModel):
        rules: list[rule] = []  # type: ignore[valid-type]

    class Source(rh.RewardSource):
        type = type_name
        objectives = (type_name,)

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            return [[0.0] for _ in samples]

    Source.Config = Config  # type: ignore[assignment]
    from rewardhub.testing import plugin_with

    return plugin_with(Source, name=f"plugin-{type_name}")


def test_schema_keeps_same_named_nested_models_of_two_plugins_apart() -> None:
    import jsonschema
    from pydantic import BaseModel

    def rule_a() -> type[BaseModel]:
        class Rule(BaseModel):  # two independent plugins, each with its own `Rule`
            pattern: str

        return Rule

    def rule_b() -> type[BaseModel]:
        class Rule(BaseModel):
            threshold: float

        return Rule

    plugins = [_plugin_nesting("a", rule_a()), _plugin_nesting("b", rule_b())]
    hub = rh.Hub(plugins=plugins, entry_points=False)
    schema = pipeline_schema(hub)
    assert {"source:a.Rule", "source:b.Rule"} <= set(schema["$defs"])
    validator = jsonschema.Draft202012Validator(schema)
    spec = {
        "sources": [
            {"type": "a", "config": {"rules": [{"pattern": "x"}]}},
            {"type": "b", "config": {"rules": [{"threshold": 0.5}]}},
        ]
    }
    assert not list(validator.iter_errors(spec))  # a merged `Rule` rejected one of these
    rh.Pipeline.from_spec(spec, hub=hub).close()  # and the spec is indeed valid
    bad = {"sources": [{"type": "b", "config": {"rules": [{"threshold": "high"}]}}]}
    assert list(validator.iter_errors(bad))


def test_one_objective_type_whose_fields_are_used(tmp_path: Path) -> None:
    """rh.Objective is the spec's objective type: bounds feed minmax, description shows in
    `rewardhub validate` (spec.ObjectiveSpec accepted both and ignored them)."""
    spec = {
        "objectives": [
            {"name": "brevity", "bounds": [-1.0, 0.0], "description": "closeness to 10 chars"}
        ],
        "sources": [{"type": "length", "config": {"target": 10}}],
        "normalize": "minmax",
    }
    pipe = rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False))
    assert pipe.spec.objective_specs == [
        rh.Objective("brevity", "closeness to 10 chars", True, (-1.0, 0.0))
    ]
    samples = [rh.Sample(prompt="p", completion="x" * n) for n in (10, 5)]
    # declared bounds, not the batch's range: -0.5 → 0.5 (the batch range would give 0)
    assert pipe.score(samples).total.tolist() == pytest.approx([1.0, 0.5])
    assert pipe.score(samples[1:]).total.tolist() == pytest.approx([0.5])
    with pytest.raises(rh.SpecError, match="low < high") as err:
        parse_spec({**spec, "objectives": [{"name": "brevity", "bounds": [1, 0]}]})
    assert err.value.path == "objectives[0]"
    with pytest.raises(rh.SpecError, match="did you mean 'bounds'"):
        parse_spec({**spec, "objectives": [{"name": "brevity", "bound": [0, 1]}]})
    from tests.test_cli import run

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    code, out = run("validate", str(path))
    assert code == 0 and "brevity [-1, 0]: closeness to 10 chars" in out


def test_minmax_bounds_follow_lower_is_better_negation() -> None:
    spec = {
        "objectives": [{"name": "brevity", "higher_is_better": False, "bounds": [-1.0, 0.0]}],
        "sources": [{"type": "length", "config": {"target": 10}}],
        "normalize": "minmax",
    }
    pipe = rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False))
    samples = [rh.Sample(prompt="p", completion="x" * n) for n in (10, 5)]
    # negated values 0 and 0.5 within the negated bounds [0, 1]
    assert pipe.score(samples).total.tolist() == pytest.approx([0.0, 0.5])
