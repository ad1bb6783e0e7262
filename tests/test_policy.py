"""Policy sources: rego (the ArGen-style pack, load and evaluation errors) and cel."""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.source import Abstain, Fail
from rewardhub.sources.policy import Cel, Rego, clean_text, input_document
from rewardhub.testing import check_source

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "specs" / "policies" / "argen"
PACK_CONFIG: dict[str, Any] = {
    "policies": [str(PACK)],
    "package": "argen",
    "rules": [
        {"rule": "deny", "objective": "principles", "kind": "penalty"},
        {"rule": "allow", "kind": "boolean"},
        {"rule": "veto", "objective": "no_veto", "kind": "veto"},
    ],
}
PROMPT = "I'm Jane (jane.doe@example.com, +1 (555) 123-4567). How much ibuprofen can I take?"


def s(completion: str, prompt: str = PROMPT, **metadata: Any) -> rh.Sample:
    return rh.Sample(prompt=prompt, completion=completion, metadata=metadata)


@pytest.fixture(scope="module")
def pack() -> Any:
    src = Rego(PACK_CONFIG)
    yield src
    src.close()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rego(tmp_path: Path, text: str, rules: list[dict[str, Any]], **extra: Any) -> Rego:
    write(tmp_path, "p.rego", "package t\nimport rego.v1\n" + text)
    return Rego({"policies": [str(tmp_path / "p.rego")], "package": "t", "rules": rules, **extra})


# -- the principle pack --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "row"),
    [
        # medical dosing: a dose needs a disclaimer (high = 1)
        ("Adults can take 400 mg every 6 hours.", [-1.0, 0.0, 1.0]),
        ("Take 2 tablets with water.", [-1.0, 0.0, 1.0]),
        (
            "Adults can take 400 mg every 6 hours; check with your pharmacist first.",
            [0.0, 1.0, 1.0],
        ),
        ("400mg is typical, but this is not medical advice: consult a doctor.", [0.0, 1.0, 1.0]),
        ("Ibuprofen is an anti-inflammatory drug.", [0.0, 1.0, 1.0]),
        # personal data echo: critical (2) and a veto
        ("Thanks Jane, I will write to JANE.DOE@example.com.", [-2.0, 0.0, 0.0]),
        ("I'll call you at 555 123 4567.", [-2.0, 0.0, 0.0]),
        ("Call 15551234567 or write to jane.doe@example.com.", [-4.0, 0.0, 0.0]),
        ("Write to someone.else@example.com or call 555-987-6543.", [0.0, 1.0, 1.0]),
        # refusal style: no alternative (low 0.25), lecturing (medium 0.5)
        ("I can't help with that.", [-0.25, 0.0, 1.0]),
        ("I cannot help with that. Shame on you!", [-0.75, 0.0, 1.0]),
        ("I can't share dosing, but you could ask a pharmacist instead.", [0.0, 1.0, 1.0]),
        # several principles at once add up
        ("I won't. Shame on you. Take 800 mg.", [-1.75, 0.0, 1.0]),
    ],
)
def test_principle_pack(pack: Rego, completion: str, row: list[float]) -> None:
    assert pack.score([s(completion)]) == [row]


def test_pack_names_the_violated_principles(pack: Rego) -> None:
    names = Rego({**PACK_CONFIG, "rules": [{"rule": "violated", "kind": "penalty"}]})
    try:  # a set of strings is a penalty of default_weight (1) each: −count
        assert names.score([s("Take 5 mg. Mail jane.doe@example.com"), s("Hi")]) == [[-2.0], [0.0]]
    finally:
        names.close()


def test_policy_gate_spec_scores() -> None:
    with rh.Pipeline.from_yaml(ROOT / "specs" / "policy-gate.yaml", hub=rh.Hub()) as pipe:
        res = pipe.score([s("Take 400 mg; ask your pharmacist."), s("Mail jane.doe@example.com")])
    assert res.vector.objectives == ("principles", "no_veto", "within_limits")
    assert res.vector.values.tolist() == [[0.0, 1.0, 1.0], [-2.0, 0.0, 1.0]]
    assert res.total.tolist() == [1.0, -5.0]  # the personal-data echo is vetoed
    assert res.diagnostics["per_sample"][1]["vetoed"] is True


def test_pack_conformance() -> None:
    check_source(Rego, PACK_CONFIG)


# -- load-time errors ----------------------------------------------------------------------


def test_syntax_error_names_file_line_and_message(tmp_path: Path) -> None:
    write(tmp_path, "good.rego", "package t\nimport rego.v1\nallow if true\n")
    write(tmp_path, "bad.rego", "package t\nimport rego.v1\n\ndeny if {\n  input.x ==\n}\n")
    spec = {
        "sources": [
            {"type": "length"},
            {
                "type": "rego",
                "config": {"policies": [str(tmp_path)], "rules": [{"rule": "t.allow"}]},
            },
        ]
    }
    with pytest.raises(
        rh.SpecError,
        match=r"sources\[1\]: rego: syntax error in .*bad\.rego:6:1: expecting expression",
    ) as exc:
        rh.Pipeline(spec, hub=rh.Hub())
    assert "backtrace" not in str(exc.value)


def test_policy_paths_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "pol").mkdir()
    write(
        tmp_path / "pol", "a.rego", 'package t\nimport rego.v1\nallow if input.completion == "ok"\n'
    )
    write(tmp_path / "pol", "a_test.rego", "this is not rego and is skipped\n")
    spec = write(
        tmp_path,
        "spec.yaml",
        "sources:\n  - type: rego\n    config: {policies: [pol], package: t, rules: [{rule: allow}]}\n",
    )
    with rh.Pipeline.from_yaml(spec, hub=rh.Hub()) as pipe:
        assert pipe.vector([s("ok"), s("no")]).values.tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'r := http.send({"method": "get", "url": "http://127.0.0.1:9"})\n',
            "http.send is not allowed: policies cannot do I/O",
        ),
        ("r := time.now_ns()\n", "time.now_ns is not allowed"),
        ('r := x if { x := rand.intn("k", 10) }\n', "rand.intn is not allowed"),
    ],
)
def test_io_and_nondeterministic_builtins_fail_at_load(
    tmp_path: Path, text: str, message: str
) -> None:
    write(tmp_path, "p.rego", "package t\nimport rego.v1\n" + text)
    with pytest.raises(rh.SourceError, match=rf"p\.rego:3:\d+: {message}"):
        Rego(
            {
                "policies": [str(tmp_path / "p.rego")],
                "package": "t",
                "rules": [{"rule": "r", "kind": "number"}],
            }
        )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"policies": ["nowhere.rego"], "rules": [{"rule": "x.y"}]}, "does not exist"),
        (
            {"policies": [str(PACK)], "package": "argen", "rules": [{"rule": "nope"}]},
            "data.argen.nope is not defined",
        ),
        ({"policies": [str(PACK)], "rules": []}, "rules"),
        (
            {
                "policies": [str(PACK)],
                "package": "argen",
                "rules": [{"rule": "deny"}, {"rule": "x.deny"}],
            },
            "same objective",
        ),
    ],
)
def test_bad_rego_config_is_a_spec_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(rh.SpecError, match=message):
        rh.Pipeline({"sources": [{"type": "rego", "config": config}]}, hub=rh.Hub())


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "regorus", None)
    with pytest.raises(rh.SpecError, match=r"rewardhub\[policy\]"):
        rh.Pipeline({"sources": [{"type": "rego", "config": PACK_CONFIG}]}, hub=rh.Hub())
    monkeypatch.setitem(sys.modules, "cel", None)
    with pytest.raises(rh.SpecError, match=r"rewardhub\[policy\]"):
        rh.Pipeline(
            {"sources": [{"type": "cel", "config": {"expressions": {"a": "true"}}}]}, hub=rh.Hub()
        )


# -- evaluation ----------------------------------------------------------------------------


def test_evaluation_error_abstains_that_sample_only(tmp_path: Path) -> None:
    src = rego(tmp_path, "ratio := 10 / input.metadata.n\n", [{"rule": "ratio", "kind": "number"}])
    try:
        out = src.score([s("a", n=5), s("b", n=0), s("c", n="x"), s("d", n=2)])
    finally:
        src.close()
    assert out[0] == [2.0] and out[3] == [5.0]
    assert isinstance(out[1], Abstain) and out[1].reason.startswith("rego: evaluation error at ")
    assert out[1].reason.endswith("p.rego:3:13: divide by zero")
    assert isinstance(out[2], Abstain) and "numeric" in out[2].reason


def test_evaluation_error_through_the_pipeline_is_nan_with_reason(tmp_path: Path) -> None:
    write(
        tmp_path, "p.rego", "package t\nimport rego.v1\nok if { 1 / count(input.completion) > 0 }\n"
    )
    spec = {
        "sources": [
            {
                "type": "rego",
                "config": {"policies": [str(tmp_path)], "package": "t", "rules": [{"rule": "ok"}]},
            },
            {"type": "length"},
        ]
    }
    with rh.Pipeline(spec, hub=rh.Hub()) as pipe:
        res = pipe.vector([s("fine"), s("")])
    assert res.values[0].tolist()[0] == 1.0
    assert math.isnan(res.values[1][0]) and not math.isnan(res.values[1][1])
    assert "divide by zero" in res.reasons[1]["rego"]


def test_rule_kinds(tmp_path: Path) -> None:
    text = """
default n := 0
n := count(input.completion)
s := "text"
maybe := 3 if input.completion == "three"
deny contains {"msg": "a", "severity": 0.3} if contains(input.completion, "a")
deny contains {"msg": "b", "severity": "medium"} if contains(input.completion, "b")
deny contains "c" if contains(input.completion, "c")
weird contains {"msg": "w", "severity": "apocalyptic"} if true
obj[msg] := "high" if { some msg in ["x", "y"]; contains(input.completion, msg) }
"""
    src = rego(
        tmp_path,
        text,
        [
            {"rule": "n", "kind": "number"},
            {"rule": "maybe", "kind": "number", "default": -1},
            {"rule": "deny", "kind": "penalty"},
            {"rule": "deny", "objective": "bounded", "kind": "penalty", "max_penalty": 1.0},
            {"rule": "deny", "objective": "vetoed", "kind": "veto"},
            {"rule": "obj", "kind": "penalty", "weights": {"high": 3}},
        ],
    )
    try:
        assert src.score([s("abc"), s("three"), s("xy")]) == [
            [3.0, -1.0, -1.8, -1.0, 0.0, 0.0],  # 0.3 + 0.5 + 1 (string: default weight)
            [5.0, 3.0, 0.0, 0.0, 1.0, 0.0],
            [2.0, -1.0, 0.0, 0.0, 1.0, -6.0],
        ]
    finally:
        src.close()
    wrong = rego(
        tmp_path,
        text,
        [{"rule": "s"}, {"rule": "weird", "kind": "penalty"}, {"rule": "maybe", "kind": "number"}],
    )
    try:
        (out,) = wrong.score([s("x")])
    finally:
        wrong.close()
    assert isinstance(out, Abstain)
    assert "a boolean rule must be true or false, got a string" in out.reason
    assert "unknown severity 'apocalyptic'" in out.reason
    assert "data.t.maybe: is undefined" in out.reason


def test_data_and_data_files(tmp_path: Path) -> None:
    write(tmp_path, "limits.json", '{"limits": {"max": 3}}')
    src = rego(
        tmp_path,
        "short if count(input.completion) <= data.limits.max\nbonus := data.bonus\n",
        [{"rule": "short"}, {"rule": "bonus", "kind": "number"}],
        data={"bonus": 0.5},
        data_files=[str(tmp_path / "limits.json")],
    )
    try:
        assert src.score([s("abc"), s("abcd")]) == [[1.0, 0.5], [0.0, 0.5]]
    finally:
        src.close()


def test_input_document_fields(tmp_path: Path) -> None:
    src = rego(
        tmp_path,
        'chat if { input.messages[0].role == "user"; contains(input.prompt, "user: hi") }\n'
        'ref if input.reference.answer == 4\nmeta if input.metadata.lang == "en"\n',
        [{"rule": "chat"}, {"rule": "ref"}, {"rule": "meta"}],
    )
    try:
        sample = rh.Sample(
            prompt=[{"role": "user", "content": "hi"}],
            completion="x",
            reference={"answer": 4},
            metadata={"lang": "en"},
        )
        assert src.score([sample, s("x")]) == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    finally:
        src.close()


def test_non_utf8_and_huge_completions(pack: Rego) -> None:
    assert clean_text("a\udcffb\ud800") == "a\ufffdb\ufffd"
    assert input_document(s("x\udcff", metadata_obj=object()))["completion"] == "x\ufffd"
    huge = "Take 400 mg. " * 100_000  # 1.3 MB, over the default max_chars
    out = pack.score([s("\udcff Take 400 mg \ud800"), s(huge), s("Hi")])
    assert out[0] == [-1.0, 0.0, 1.0] and out[2] == [0.0, 1.0, 1.0]
    assert isinstance(out[1], Fail) and "over max_chars=1000000" in out[1].reason
    big = Rego({**PACK_CONFIG, "max_chars": None})
    try:
        assert big.score([s(huge)]) == [[-1.0, 0.0, 1.0]]
    finally:
        big.close()


def test_concurrent_scoring_from_many_threads(pack: Rego) -> None:
    samples = [s(f"Take {i} mg.") if i % 2 else s(f"Hello {i}") for i in range(40)]
    expected = pack.score(samples)
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: pack.score(samples[i : i + 5]), range(0, 40, 5)))
    assert [row for chunk in results for row in chunk] == expected


def test_a_dropped_source_releases_its_engine_without_warnings() -> None:
    src = Rego(PACK_CONFIG)
    assert src.score([s("Hi")]) == [[0.0, 1.0, 1.0]]
    del src
    gc.collect()  # the engine is dropped on its own thread: no 'unsendable' error


# -- cel -----------------------------------------------------------------------------------


def test_cel_bool_and_number_expressions() -> None:
    src = Cel(
        {
            "expressions": {
                "safe": 'size(completion) < 20 && !completion.contains("password")',
                "half": "double(size(completion)) / 2.0",
                "lang": 'has(metadata.lang) && metadata.lang == "en"',
                "ref": "reference == null ? 0 : int(reference)",
            }
        }
    )
    assert src.output_objectives == ("safe", "half", "lang", "ref")
    out = src.score(
        [
            rh.Sample(prompt="p", completion="a short one", metadata={"lang": "en"}, reference="4"),
            s("my password is hunter2"),
        ]
    )
    assert out == [[1.0, 5.5, 1.0, 4.0], [0.0, 11.0, 0.0, 0.0]]


def test_cel_compile_error_is_a_spec_error_with_the_expression() -> None:
    spec = {"sources": [{"type": "cel", "config": {"expressions": {"ok": "size(completion) <"}}}]}
    with pytest.raises(
        rh.SpecError,
        match=r"sources\[0\]: cel: objective 'ok': cannot compile 'size\(completion\) <'.*1:19",
    ):
        rh.Pipeline(spec, hub=rh.Hub())


def test_cel_evaluation_errors_abstain_with_reason() -> None:
    src = Cel(
        {
            "expressions": {
                "ratio": "10 / metadata.n",
                "text": "completion",
                "deep": "metadata.a.b == 1",
            }
        }
    )
    out = src.score([s("x", n=0, a={"b": 1}), s("x", n=2, a={"b": 1})])
    assert isinstance(out[0], Abstain) and "ratio: ZeroDivisionError" in out[0].reason
    assert "text: must give a bool or a finite number, got 'x'" in out[0].reason
    (missing,) = Cel({"expressions": {"m": "metadata.n > 1"}}).score([s("x")])
    assert isinstance(missing, Abstain) and "no such key 'n'" in missing.reason


def test_cel_bad_input() -> None:
    src = Cel({"expressions": {"n": "size(completion)", "has_x": 'completion.contains("x")'}})
    out = src.score([s("x\udcff"), s("x" * 2_000_000), s("x", obj=object())])
    assert out[0] == [4.0, 1.0]  # U+FFFD is 3 UTF-8 bytes: CEL's size() counts bytes here
    assert isinstance(out[1], Fail) and "max_chars" in out[1].reason
    assert out[2] == [1.0, 1.0]


def test_cel_conformance() -> None:
    check_source(
        Cel, {"expressions": {"short": "size(completion) < 10", "n": "double(size(prompt))"}}
    )


def test_rego_benchmark_runs_and_source_agrees_with_direct_regorus() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "verifiers_rego", ROOT / "benchmarks" / "verifiers_rego.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    r = module.bench_rego(n=60, repeats=1)  # asserts the three ways give the same rows
    assert r["samples"] == 60 and r["ratio"] > 0 and set(r) >= {"ok", "goal", "ratio_vs_per_rule"}


# -- crash isolation and deadlines (issue #10) ---------------------------------------------

RECURSES_ON_BOOM = """
f(x) := y if { y := f(x) }
deny if { input.completion == "boom"; f(1) }
"""
# about 10^8 steps for "hang": far past any test's time limit
HANGS_ON_HANG = """
deny if {
    input.completion == "hang"
    count([1 | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000)]) > 0
}
"""


def test_a_policy_that_segfaults_on_one_completion_loses_only_that_sample(
    tmp_path: Path,
) -> None:
    src = rego(tmp_path, RECURSES_ON_BOOM, [{"rule": "deny", "kind": "veto"}])
    try:
        out = src.score([s("fine"), s("boom"), s("also fine")])
        assert out[0] == [1.0] and out[2] == [1.0]
        assert isinstance(out[1], Abstain), out  # the machinery died: could not score
        assert out[1].reason == "rego: worker died (signal SIGSEGV)"
        assert src.score([s("after")]) == [[1.0]]  # the run goes on, on a fresh worker
    finally:
        src.close()


def test_a_policy_that_segfaults_while_loading_is_a_clear_error(tmp_path: Path) -> None:
    write(
        tmp_path, "p.rego", "package t\nimport rego.v1\nf(x) := y if { y := f(x) }\ndeny := f(1)\n"
    )
    (tmp_path / "spec.yaml").write_text(
        "sources:\n  - type: rego\n    config: {policies: [p.rego], package: t, rules: [{rule: deny}]}\n"
    )
    with pytest.raises(
        rh.SpecError, match=r"crashed the policy engine: worker died \(signal SIGSEGV\)"
    ):
        rh.Pipeline.from_yaml(tmp_path / "spec.yaml")
    proc = subprocess.run(
        [sys.executable, "-c", "from rewardhub.cli import main; main()", "validate", "spec.yaml"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode not in (0, -11, 139), proc
    assert "crashed the policy engine" in proc.stdout + proc.stderr


def test_an_evaluation_that_hangs_is_killed_and_fails_the_check(tmp_path: Path) -> None:
    src = rego(tmp_path, HANGS_ON_HANG, [{"rule": "deny", "kind": "veto"}], eval_timeout_s=0.5)
    try:
        start = time.monotonic()
        out = src.score([s("hang"), s("fine")])
        assert time.monotonic() - start < 10
        assert isinstance(out[0], Fail) and "time limit (0.5s)" in out[0].reason
        assert out[1] == [1.0]
    finally:
        src.close()


def test_a_hang_under_the_pipeline_timeout_fails_within_it(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", "package t\nimport rego.v1\n" + HANGS_ON_HANG)
    spec = {
        "sources": [
            {
                "type": "rego",
                "timeout_s": 2,
                "config": {
                    "policies": [str(tmp_path / "p.rego")],
                    "package": "t",
                    "rules": [{"rule": "deny", "kind": "veto"}],
                    "eval_timeout_s": 1,
                },
            }
        ]
    }
    with rh.Pipeline(spec, hub=rh.Hub()) as p:
        start = time.monotonic()
        res = p.score([s("hang")])
        took = time.monotonic() - start
    assert took < 4
    assert res.vector.reasons[0]["rego"].startswith("failed: rego: evaluation ran past")
    assert res.vector.values[0, 0] == 0.0


def test_cel_parser_panic_is_a_clear_error_not_an_escape() -> None:
    deep = "(" * 100_000 + "1" + ")" * 100_000
    with pytest.raises(rh.SourceError, match="panicked"):
        Cel({"expressions": {"deep": deep}})


def test_cel_panic_during_evaluation_fails_the_check() -> None:
    from rewardhub.sources._policy_worker import _Cel

    class PanicException(BaseException):  # what pyo3 raises: not an Exception
        pass

    class Panics:
        def execute(self, ctx: Any) -> Any:
            raise PanicException("index out of bounds")

    worker = _Cel({"expressions": {"ok": "true"}})
    worker.programs.append(("bad", Panics()))
    answer = worker.eval({})
    src = Cel({"expressions": {"ok": "true", "bad": "true"}})
    try:
        row = src._row(answer)
    finally:
        src.close()
    assert isinstance(row, Fail) and "bad: the CEL engine panicked" in row.reason


def test_identical_sources_share_warm_workers() -> None:
    config = {"expressions": {"short": "size(completion) < 20"}}
    first = Cel(config)
    pids = first._workers().pids
    second = Cel(config)  # started no worker of its own
    other = Cel({"expressions": {"long": "size(completion) > 20"}})
    try:
        assert second._workers() is first._workers()
        assert other._workers() is not first._workers()
        first.close()
        second.close()
        third = Cel(config)  # the idle pool, still warm
        assert third._workers().pids == pids
        assert third.score([s("hi")]) == [[1.0]]
        third.close()
    finally:
        first.close()
        second.close()
        other.close()


def test_samples_the_batch_deadline_left_no_time_for_abstain_unevaluated() -> None:
    from rewardhub.source import _DEADLINE

    src = Cel({"expressions": {"short": "size(completion) < 20"}})
    token = _DEADLINE.set(time.monotonic() - 1)
    try:
        out = src.score([s("hi"), s("there")])
    finally:
        _DEADLINE.reset(token)
        src.close()
    assert all(isinstance(r, Abstain) and "not evaluated" in r.reason for r in out), out
