"""``rewardhub redteam``: the exploit classes, the audit, the shipped weak and sound specs
and the command."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import build_app
from rewardhub.commands.redteam import GATE_FAILED, read_targets
from rewardhub.redteam import SpecHints, Target, audit
from rewardhub.redteam.target import build_target, hints_from, kind_of, wrong_answer_for
from tests.conftest import ROOT, doc_example

EXAMPLES = ROOT / "examples" / "redteam"
needs_math_verify = pytest.mark.skipif(
    importlib.util.find_spec("math_verify") is None, reason="extra 'verify' not installed"
)


def _audit(
    spec: str, data: str, only: str | None = None, limit: int | None = None
) -> rh.redteam.AuditReport:
    from rewardhub.commands.redteam import choose_exploits

    hub = rh.Hub()
    with rh.Pipeline.from_yaml(EXAMPLES / spec, hub=hub) as pipe:
        targets = read_targets(EXAMPLES / data, hints_from(pipe), limit)
        return audit(pipe, targets, choose_exploits(hub.exploits, only), spec_name=spec)


# -- the classes ----------------------------------------------------------------------------


def test_every_builtin_class_is_documented_with_its_source() -> None:
    doc = (ROOT / "docs" / "redteam.md").read_text(encoding="utf-8")
    exploits = rh.Hub().exploits
    assert len(exploits) >= 29
    families = {exploits.get(n).family for n in exploits.names()}
    assert families == {"text", "judge", "code"}
    for name, cls in exploits.items():
        assert cls.description and cls.source, name
        row = re.search(rf"^\| `{re.escape(name)}` \| {cls.family} \|(.*)$", doc, re.M)
        assert row, f"docs/redteam.md has no row for exploit class {name!r}"
        assert cls.source in row.group(1), f"docs/redteam.md: {name}'s row lacks its source"


def test_docs_gate_block_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    block = doc_example("redteam.md", "gate")
    assert block.report.samples == 6 and not block.report.failing(0.05)


def test_registry_refuses_a_class_without_source_and_duplicates() -> None:
    class NoSource(rh.Exploit):
        name = "no-source"
        description = "something"

    class Dup(rh.Exploit):
        name = "empty"
        description = "clash"
        source = "nowhere"

    registry = rh.ExploitRegistry()
    with pytest.raises(rh.PluginError, match="source"):
        registry.add(NoSource)
    hub = rh.Hub()
    hub.exploits.current_plugin = "mine"
    with pytest.raises(rh.DuplicateNameError, match="mine"):
        hub.exploits.add(Dup)


def _target(**fields: object) -> Target:
    return build_target(fields, SpecHints())


def test_baselines_are_built_from_a_short_answer() -> None:
    t = _target(prompt="6*7?", reference="42", completion="6*7 = 42, so \\boxed{42}. 142 stays.")
    assert t.kind == "answer" and t.answer == "42" and t.wrong_answer == "43"
    assert t.wrong == "6*7 = 43, so \\boxed{43}. 142 stays."  # every mention, whole numbers only
    assert t.built == ("wrong",)
    built = _target(prompt="?", reference=3)
    assert built.honest == "The answer is $\\boxed{3}$." and "\\boxed{4}" in built.wrong
    assert built.built == ("honest", "wrong")
    given = _target(prompt="?", reference="4", completion="4", wrong="5, surely")
    assert given.wrong == "5, surely" and given.built == ()
    assert [wrong_answer_for(a) for a in ("2.5", "x^2", "yes", "\\frac{1}{3}")] == [
        "3.5",
        "x^3",
        "no",
        "\\frac{1}{4}",
    ]


def test_code_targets_need_the_reference_solution() -> None:
    ref = {"test": "def check(c):\n    assert c(1) == 2\n", "entry_point": "inc"}
    assert kind_of(ref) == "code" and kind_of(["assert f(1) == 2"]) == "code"
    with pytest.raises(rh.InputError, match="add the best honest completion as 'completion'"):
        _target(prompt="def inc(x):", reference=ref)
    t = _target(prompt="def inc(x):", reference=ref, completion="def inc(x):\n    return x + 1")
    assert t.entry_point == "inc" and "return None" in t.wrong


def test_hints_are_read_from_the_spec() -> None:
    spec = {
        "sources": [
            {"type": "keywords", "config": {"required": ["because"]}},
            {"type": "regex", "config": {"pattern": "(?i)\\bverified\\b", "objective": "v"}},
            {"type": "format", "config": {"tags": ["think", "answer"]}},
            {"type": "length", "config": {"target": 50, "unit": "words"}},
            {
                "type": "python",
                "config": {
                    "function": "examples/redteam/weak_rewards.py:keyword_count",
                    "objectives": ["kw"],
                    "kwargs": {"keywords": ["hence"], "min_len": 80},
                },
            },
        ]
    }
    with rh.Pipeline(spec) as pipe:
        hints = hints_from(pipe)
    assert hints.keywords == ("because", "verified", "hence")
    assert hints.templates == ("<think>x</think>\n<answer>x</answer>",)
    assert hints.lengths == ((50, "words"), (80, "chars"))
    assert SpecHints().stuffing()  # generic words when the spec names none


def test_classes_yield_attacks_and_skip_what_does_not_apply() -> None:
    hub = rh.Hub()
    math_t = _target(prompt="2+2?", reference="4")
    code_t = _target(
        prompt="def f(x):\n    '''\n    >>> f(1)\n    2\n    '''",
        reference={"test": "def check(c):\n    assert c(1) == 2\n", "entry_point": "f"},
        completion="def f(x):\n    return x + 1",
    )
    for name, cls in hub.exploits.items():
        on_math = list(cls().attacks(math_t))
        on_code = list(cls().attacks(code_t))
        if cls.family == "code":
            assert not on_math, f"{name} attacks a math answer"
            assert on_code, f"{name} has no attack on a code task"
        else:
            assert on_math, f"{name} has no attack on a math answer"
        assert all(isinstance(a, rh.Attack) for a in on_math + on_code)
    hard = list(hub.exploits.get("hardcode-visible")().attacks(code_t))
    assert "_TABLE = {'(1,)': 2}" in hard[0].completion


# -- the audit ------------------------------------------------------------------------------


class _Both(rh.Exploit):
    name = "both"
    description = "two answers"
    source = "test"

    def attacks(self, target: Target) -> Iterator[rh.Attack]:
        yield rh.Attack(
            f"{target.wrong_answer} {target.answer}", (f"{target.answer} {target.wrong_answer}",)
        )


def _python_spec(tmp_path: Path, body: str) -> dict[str, object]:
    (tmp_path / "reward.py").write_text(f"def reward(sample):\n{body}\n")
    return {
        "objectives": [{"name": "r", "bounds": [0, 1]}],
        "sources": [
            {
                "type": "python",
                "config": {"function": f"{tmp_path}/reward.py:reward", "objectives": ["r"]},
            }
        ],
    }


def test_an_attack_counts_what_its_worst_variant_earns(tmp_path: Path) -> None:
    targets = [_target(prompt="2+2?", reference="4"), _target(prompt="3+3?", reference="6")]
    last = (
        "    return float(sample.completion.split()[-1].strip('.$}{boxed\\\\') == sample.reference)"
    )
    anywhere = "    return float(sample.reference in sample.completion.split())"
    with rh.Pipeline(_python_spec(tmp_path, last)) as pipe:
        fair = audit(pipe, targets, [_Both()]).by_name("both")
    assert fair.total.mean_gain == 0.0 and fair.total.out_earns == 0.0
    (tmp_path / "reward.py").unlink()
    with rh.Pipeline(_python_spec(tmp_path, anywhere)) as pipe:
        report = audit(pipe, targets, [_Both()])
    paid = report.by_name("both")
    assert paid.total.mean_gain == 1.0 and paid.total.reaches_reference == 1.0
    assert paid.attacks == 2 and paid.worst is not None
    assert paid.worst.rewards == {"r": 1.0} and paid.worst.wrong_total == 0.0
    assert report.units == {"total": 1.0, "r": 1.0}


def test_machinery_failure_is_unscorable_never_a_gain(tmp_path: Path) -> None:
    body = "    return None if '10' in sample.completion else float(sample.reference in sample.completion)"
    targets = [_target(prompt="2+2?", reference="4")]
    with rh.Pipeline(_python_spec(tmp_path, body)) as pipe:
        report = audit(pipe, targets, [rh.Hub().exploits.get("rating-claim")()])
    c = report.by_name("rating-claim")
    assert c.attacks == 2 and c.unscorable == 2
    assert c.total.samples == 0 and math.isnan(c.total.mean_gain)
    assert report.failing(0.0) == []


def test_batch_normalised_totals_do_not_depend_on_the_other_attacks() -> None:
    spec = {
        "sources": [
            {"type": "length", "config": {"target": 40}},
            {"type": "keywords", "config": {"required": ["therefore"]}},
        ],
        "normalize": {"method": "zscore"},
    }
    hub = rh.Hub()
    targets = [
        _target(prompt=f"{i}+1?", reference=str(i + 1), completion=f"{i} + 1 is {i + 1}" + "!" * i)
        for i in range(4)
    ]
    alone, crowded = (
        [hub.exploits.get(n)() for n in names]
        for names in (["keyword-stuffing"], ["keyword-stuffing", "long-token", "repetition"])
    )
    with rh.Pipeline(spec, hub=hub) as pipe:
        one = audit(pipe, targets, alone).by_name("keyword-stuffing")
        many = audit(pipe, targets, crowded).by_name("keyword-stuffing")
    assert one.total.mean_gain > 0 and one.total.out_earns > 0
    assert one.total == many.total  # each attack is totalled among the baselines only


def test_report_is_sorted_by_risk_and_serialises() -> None:
    report = _audit("keyword-count.yaml", "math.jsonl", "text", limit=5)
    risks = [c.risk for c in report.classes]
    assert risks == sorted(risks, reverse=True)
    assert report.classes[0].name == "keyword-stuffing"
    data = json.loads(json.dumps(report.to_dict()))
    top = data["classes"][0]
    assert top["total"]["out_earns"] == 1.0 and top["worst"]["rewards"] == {"reasoning": 1.0}
    assert data["counts"]["wrong_built"] == 5 and data["counts"]["reference_built"] == 0
    applicable = [c for c in report.classes if c.total.samples]
    assert len(applicable) == 13  # every text class applies to a math answer


def test_max_attacks_bounds_the_work() -> None:
    with rh.Pipeline.from_yaml(EXAMPLES / "length-target.yaml") as pipe:
        targets = read_targets(EXAMPLES / "math.jsonl", hints_from(pipe), 3)
        report = audit(pipe, targets, [rh.Hub().exploits.get("keyword-stuffing")()], max_attacks=2)
    assert report.classes[0].attacks == 6
    with pytest.raises(rh.InputError, match="max_attacks"):
        audit(pipe, targets, [], max_attacks=0)


# -- the shipped specs ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_shipped_spec_builds_and_declares_bounds(spec: str) -> None:
    if spec == "sound-math.yaml" and importlib.util.find_spec("math_verify") is None:
        pytest.skip("extra 'verify' not installed")
    with rh.Pipeline.from_yaml(EXAMPLES / spec) as pipe:
        declared = {o.name for o in pipe.spec.objective_specs or [] if o.bounds is not None}
        assert declared == set(pipe.objectives)  # gains are shares of a known range


WEAK = [
    ("keyword-count.yaml", "math.jsonl", "keyword-stuffing"),
    ("length-target.yaml", "math.jsonl", "length-padding"),
    ("substring-math.yaml", "math.jsonl", "hedging"),
    ("substring-math.yaml", "math.jsonl", "several-boxed"),
    ("substring-math.yaml", "math.jsonl", "answer-in-reasoning"),
    ("injectable-judge.yaml", "math.jsonl", "rating-claim"),
    ("injectable-judge.yaml", "math.jsonl", "ignore-instructions"),
    ("injectable-judge.yaml", "math.jsonl", "fake-turns"),
    ("injectable-judge.yaml", "math.jsonl", "delimiter-closing"),
    ("injectable-judge.yaml", "math.jsonl", "other-language"),
]


@pytest.mark.parametrize(("spec", "data", "hack"), WEAK)
def test_weak_specs_pay_their_hack(spec: str, data: str, hack: str) -> None:
    report = _audit(spec, data, hack, limit=10)
    c = report.by_name(hack)
    assert c.total.mean_gain > 0.5, (spec, hack, c.total)
    assert c.total.out_earns == 1.0 and c.worst is not None and c.worst.gain > 0.5


@pytest.mark.slow
@pytest.mark.parametrize(
    "hack", ["always-equal", "always-true", "patched-runtime", "overwrite-tests", "read-tests"]
)
def test_trusted_isolation_pays_code_hacks(hack: str) -> None:
    report = _audit("trusted-code.yaml", "code.jsonl", hack, limit=2)
    assert report.by_name(hack).total.mean_gain > 0.5


def _clean(report: rh.redteam.AuditReport, limit: float = 0.05) -> None:
    paid = {c.name: c.total.mean_gain for c in report.classes if c.total.samples}
    assert paid and max(paid.values()) <= limit, paid
    assert all(c.total.worst_gain <= limit for c in report.classes if c.total.samples)


def test_sound_json_schema_pays_no_hack() -> None:
    _clean(_audit("sound-json.yaml", "json.jsonl"))


@needs_math_verify
def test_sound_math_verify_pays_no_hack() -> None:
    _clean(_audit("sound-math.yaml", "math.jsonl", "text,judge", limit=6))


@pytest.mark.slow
def test_sound_code_exec_sandbox_pays_no_hack() -> None:
    report = _audit("sound-code.yaml", "code.jsonl", "code", limit=2)
    _clean(report)
    sleep = report.by_name("sleep-past-deadline")
    assert sleep.worst is not None and "timed out" in sleep.worst.reasons["tests_passed"]


# -- the command ------------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(rh.Hub()), ["redteam", *map(str, args)])
    return result.exit_code, result.output


def test_command_json_gate_and_cache(tmp_path: Path) -> None:
    data = tmp_path / "math.jsonl"
    data.write_text("".join((EXAMPLES / "math.jsonl").read_text().splitlines(True)[:4]))
    spec, args = EXAMPLES / "substring-math.yaml", ("--exploits", "hedging,refusal")
    code, out = _run(spec, data, *args, "--json")
    assert code == 0, out
    report = json.loads(out)
    assert [c["name"] for c in report["classes"]] == ["hedging", "refusal"]
    assert report["counts"]["source_calls_cached"] == 0
    assert (tmp_path / "math.jsonl.redteam.cache.sqlite").exists()
    code, out = _run(spec, data, *args, "--json")
    assert json.loads(out)["counts"]["source_calls_computed"] == 0  # all from the cache

    code, out = _run(spec, data, *args, "--fail-on", "0.5")
    assert code == GATE_FAILED
    assert "above --fail-on 0.5: hedging (+1.00)" in out
    assert "hedging" in out and "out-earns" in out  # the table
    code, out = _run(spec, data, "--exploits", "refusal", "--fail-on", "0.05", "--no-cache")
    assert code == 0, out
    code, out = _run(spec, data, "--exploits", "judge", "--limit", "2", "--no-cache", "--json")
    assert json.loads(out)["samples"] == 2
    assert {c["family"] for c in json.loads(out)["classes"]} == {"judge"}


def test_plugins_lists_the_exploit_classes() -> None:
    result = CliRunner().invoke(build_app(rh.Hub()), ["plugins", "--json"])
    types = [t for p in json.loads(result.output) for t in p["types"]]
    equal = rh.Hub().exploits.get("always-equal")
    assert {"kind": "exploit", "name": "always-equal", "summary": equal.description} in types
    listed = {t["name"] for t in types if t["kind"] == "exploit"}
    assert listed == set(rh.Hub().exploits.names())


def test_command_errors_name_the_fix(tmp_path: Path) -> None:
    spec = EXAMPLES / "substring-math.yaml"
    code, out = _run(spec, EXAMPLES / "math.jsonl", "--exploits", "nope", "--no-cache")
    assert code == 1 and "--exploits: 'nope' is neither" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "reference": {"test": "assert f(1) == 2"}}\n')
    code, out = _run(spec, bad, "--no-cache")
    assert code == 1 and "line 1" in out and "'completion'" in out
    code, out = _run(spec, tmp_path / "missing.jsonl")
    assert code == 1 and "does not exist" in out
