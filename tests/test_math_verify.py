"""The ``math-verify`` source: equivalent forms, near misses, extraction, timeouts, workers."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.sources.math import MathVerify, MathVerifyConfig, extract_answer

pytest.importorskip("math_verify")

ROOT = Path(__file__).resolve().parent.parent

# (completion, reference): equivalent forms that must score 1, from the kinds math-verify's
# documentation lists (fractions, decimals, LaTeX, sets, intervals, percentages, ...).
EQUIVALENT = [
    ("\\boxed{\\frac{1}{2}}", "0.5"),
    ("\\boxed{0.5}", "\\frac{1}{2}"),
    ("\\boxed{\\frac12}", "1/2"),
    ("\\boxed{\\dfrac{3}{4}}", "0.75"),
    ("\\boxed{2/4}", "1/2"),
    ("\\boxed{3.0}", "3"),
    ("The answer is 1000.", "1,000"),
    ("\\boxed{50\\%}", "0.5"),
    ("\\boxed{0.5}", "50\\%"),
    ("\\boxed{\\{2, 1\\}}", "\\{1, 2\\}"),
    ("\\boxed{\\{3, 1, 2\\}}", "\\{1,2,3\\}"),
    ("\\boxed{[1, 2)}", "[1,2)"),
    ("\\boxed{(-\\infty, 3]}", "(-\\infty, 3]"),
    ("\\boxed{(1, 2)}", "(1,2)"),
    ("\\boxed{(x+1)^2}", "x^2+2x+1"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}"),
    ("\\boxed{\\sqrt{12}}", "2\\sqrt{3}"),
    ("\\boxed{3.14159265358979}", "\\pi"),
    ("\\boxed{2}", "x=2"),
    ("\\boxed{x = 2}", "2"),
    ("\\boxed{0.3333333}", "1/3"),
    ("\\boxed{\\infty}", "\\infty"),
    ("\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\boxed{-5}", "-5"),
    ("\\boxed{- 5}", "-5"),
    ("\\boxed{\\frac{10}{4}}", "2.5"),
    ("\\boxed{2.50}", "5/2"),
    ("So the final answer is $\\frac{7}{2}$.", "3.5"),
    ("Answer: 12", "12"),
    ("First 3 apples, then 4 more: 7", "7"),
    ("There are 12 eggs.\nThe answer is: 12", 12),
    ("\\boxed{0.25}", 0.25),
    ("We get \\boxed{\\boxed{8}} here, so 9 is wrong", "8"),
    ("\\boxed{e}", "e"),
    ("\\boxed{2\\pi}", "2\\pi"),
    ("\\boxed{\\sqrt{2}}", "\\sqrt2"),
    ("\\boxed{1,2,3}", "\\{1,2,3\\}"),
    ("\\boxed{10^{3}}", "1000"),
    ("\\boxed{\\frac{x}{2}}", "x/2"),
]

# Near misses that must score 0.
NEAR_MISS = [
    ("\\boxed{\\frac{1}{3}}", "0.5"),
    ("\\boxed{0.333}", "1/3"),
    ("\\boxed{-5}", "5"),
    ("\\boxed{[1, 2]}", "(1,2]"),
    ("\\boxed{(1, 2)}", "[1,2]"),
    ("\\boxed{\\{1, 2\\}}", "\\{1,2,3\\}"),
    ("\\boxed{x^2+2x}", "x^2+2x+1"),
    ("\\boxed{3.15}", "\\pi"),
    ("\\boxed{2\\sqrt{2}}", "2\\sqrt{3}"),
    ("The answer is 12.", "13"),
    ("I think 41, or maybe 42", "41"),
    ("\\boxed{y=2}", "x=3"),
    ("\\boxed{0.49}", "50\\%"),
    ("\\boxed{1001}", "1,000"),
    # math-verify reads every \boxed{} of the answer: boxing several candidates earns nothing
    ("\\boxed{\\text{(B)}} hmm no \\boxed{4}", "4"),
]

S = rh.Sample


@pytest.fixture(scope="module")
def source() -> Iterator[MathVerify]:
    src = MathVerify({"format": True, "workers": 2, "timeout_s": 5})
    yield src
    src.close()


def rows(src: MathVerify, samples: list[rh.Sample]) -> list[Any]:
    return list(src.score(samples))  # type: ignore[arg-type]


def test_enough_cases() -> None:
    assert len(EQUIVALENT) + len(NEAR_MISS) >= 40


def test_equivalent_forms_score_one(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion=c, reference=r) for c, r in EQUIVALENT])
    wrong = [case for case, row in zip(EQUIVALENT, got) if row != [1.0, 1.0]]
    assert wrong == []


def test_near_misses_score_zero(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion=c, reference=r) for c, r in NEAR_MISS])
    wrong = [case for case, row in zip(NEAR_MISS, got) if row != [0.0, 1.0]]
    assert wrong == []


def test_no_answer_scores_zero_with_format_zero(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion="I do not know.", reference="3")])
    assert got == [[0.0, 0.0]]


def test_extraction_order_and_config() -> None:
    text = "Step 1 gives 3. The answer is 5. \\boxed{7} and finally 9"
    assert extract_answer(text, ["boxed", "answer_is", "last_number"]) == ("boxed", "7")
    assert extract_answer(text, ["answer_is", "boxed"]) == ("answer_is", "5")
    assert extract_answer(text, ["last_number"]) == ("last_number", "9")
    assert extract_answer("nothing here", ["boxed", "last_number"]) is None
    assert extract_answer("\\boxed{\\frac{1}{2}}", ["boxed"]) == ("boxed", "\\frac{1}{2}")
    assert extract_answer("x" * 50 + " 7", ["last_number"], max_chars=100) == ("last_number", "7")
    assert extract_answer("7 " + "x" * 200, ["last_number"], max_chars=100) is None


def test_only_the_configured_extractors_run() -> None:
    src = MathVerify({"extract": ["boxed"], "workers": 1})
    try:
        got = rows(src, [S(prompt="", completion="The answer is 4.", reference="4"),
                         S(prompt="", completion="\\boxed{4}", reference="4")])  # fmt: skip
    finally:
        src.close()
    assert got == [[0.0], [1.0]]


def test_math_verify_native_extractor() -> None:
    src = MathVerify({"extract": ["math_verify"], "workers": 1})
    try:
        got = rows(src, [S(prompt="", completion="Thus $x = \\frac{1}{2}$", reference="0.5")])
    finally:
        src.close()
    assert got == [[1.0]]


def test_missing_and_malformed_references_abstain(source: MathVerify) -> None:
    got = rows(source, [
        S(prompt="", completion="\\boxed{1}", reference=None),
        S(prompt="", completion="\\boxed{1}", reference=["1"]),
        S(prompt="", completion="\\boxed{1}", reference="  "),
        S(prompt="", completion="\\boxed{1}", reference="\\frac{"),
        S(prompt="", completion="\\boxed{1}", reference="1"),
    ])  # fmt: skip
    assert isinstance(got[0], rh.Abstain) and got[0].reason.startswith("no reference")
    for row in got[1:4]:
        assert isinstance(row, rh.Abstain) and row.reason.startswith("malformed reference"), row
    assert got[4] == [1.0, 1.0]


def test_bad_completions(source: MathVerify) -> None:
    huge = "blah " * 400_000 + "\\boxed{6}"
    got = rows(source, [
        S(prompt="", completion="\udcff\udcfe \\boxed{\udcff}", reference="1"),
        S(prompt="", completion=huge, reference="6"),
        S(prompt="", completion="\\boxed{" * 1000, reference="6"),
        S(prompt="", completion="", reference="6"),
        S(prompt="", completion="\\boxed{6}", reference="6"),
    ])  # fmt: skip
    # a boxed answer that is not maths still counts as found (format 1), but is wrong
    assert got == [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]


@pytest.mark.slow
def test_a_timeout_fails_the_check_and_other_samples_survive() -> None:
    src = MathVerify({"workers": 2, "timeout_s": 1})
    try:
        t0 = time.monotonic()
        got = rows(src, [
            S(prompt="", completion="\\boxed{9^{9^{9^{9}}}}", reference="1"),
            S(prompt="", completion="\\boxed{2}", reference="2"),
        ])  # fmt: skip
        assert time.monotonic() - t0 < 10
    finally:
        src.close()
    # the completion made the verifier time out: a failed check, never an abstention that a
    # renormalising aggregate would turn into credit
    assert got[0] == rh.Fail("timeout") and got[1] == [1.0]


def test_a_tower_of_powers_never_earns_more_than_a_wrong_answer() -> None:
    """The review's exploit: the tower times the verifier out; with the cell abstained and the
    other objectives renormalised it scored as much as a right answer."""
    spec = {
        "sources": [
            {"type": "math-verify", "config": {"workers": 1, "timeout_s": 1}},
            {"type": "keywords", "config": {"required": ["boxed"]}},
        ],
        "normalize": "none",
        "on_abstain": "renormalize",  # the most permissive policy: still no credit
    }
    tower, wrong, right = (
        S(prompt="", completion=c, reference="4")
        for c in ("\\boxed{9^{9^{9^{9^9}}}}", "\\boxed{5}", "\\boxed{4}")
    )
    for method in ("weighted", "maxmin", "tchebycheff"):
        with rh.Pipeline.from_spec({**spec, "aggregate": method}) as pipe:
            res = pipe.score([tower, wrong, right])
        assert res.vector.reasons[0]["math-verify"] == "failed: timeout"
        assert res.vector.values[0, 0] == 0.0
        t, w, r = res.total.tolist()
        assert t == w < r, method


def test_a_hung_worker_is_killed_and_replaced() -> None:
    src = MathVerify({"workers": 1, "timeout_s": 1})
    try:
        assert rows(src, [S(prompt="", completion="\\boxed{1}", reference="1")]) == [[1.0]]
        pool = src._pool
        assert pool is not None
        (pid,) = pool.pids
        os.kill(pid, signal.SIGSTOP)  # hangs where no alarm can reach it
        got = rows(src, [S(prompt="", completion="\\boxed{1}", reference="1"),
                         S(prompt="", completion="\\boxed{2}", reference="2")])  # fmt: skip
        assert got[0] == rh.Fail("timeout") and got[1] == [1.0]
        assert pool.pids != [pid]
    finally:
        src.close()


def test_a_dead_worker_is_replaced_without_losing_the_batch() -> None:
    src = MathVerify({"workers": 2, "timeout_s": 5})
    try:
        assert rows(src, [S(prompt="", completion="\\boxed{1}", reference="1")] * 2) == [[1.0]] * 2
        pool = src._pool
        assert pool is not None
        for pid in pool.pids:
            os.kill(pid, signal.SIGKILL)
        batch = [S(prompt="", completion=f"\\boxed{{{i}}}", reference=str(i)) for i in range(6)]
        assert rows(src, batch) == [[1.0]] * 6
    finally:
        src.close()


def test_pipeline_spec_and_threads() -> None:
    hub = rh.Hub(entry_points=False)
    spec = {"sources": [{"id": "math", "type": "math-verify", "config": {"workers": 2}, "batch_size": 2,
                         "concurrency": 3}], "normalize": "none"}  # fmt: skip
    samples = [S(prompt="", completion=f"\\boxed{{{i}}}", reference=str(i % 5)) for i in range(10)]
    with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
        res = pipe.score(samples)
    assert res.vector.values[:, 0].tolist() == [1.0 if i < 5 else 0.0 for i in range(10)]


def test_picklable_and_closed_pool_is_dropped(source: MathVerify) -> None:
    rows(source, [S(prompt="", completion="\\boxed{1}", reference="1")])
    clone = pickle.loads(pickle.dumps(source))
    assert clone._pool is None
    try:
        assert rows(clone, [S(prompt="", completion="\\boxed{1}", reference="1")]) == [[1.0, 1.0]]
    finally:
        clone.close()


def test_objectives() -> None:
    assert MathVerify.objectives_for(MathVerifyConfig()) == ("correct",)
    assert MathVerify.objectives_for(MathVerifyConfig(format=True)) == ("correct", "format")


def test_import_rewardhub_does_not_import_math_verify() -> None:
    code = "import sys, rewardhub; rewardhub.Hub(entry_points=False); print('math_verify' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- however the caller runs -------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import rewardhub as rh
    from rewardhub.sources.math import MathVerify
    src = MathVerify({"workers": 2})
    out = src.score([rh.Sample(prompt="", completion="\\\\boxed{1/2}", reference="0.5")] * 3)
    src.close()
    print("RESULT", out)
""")


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, **kw
    )


@pytest.mark.slow
def test_script_without_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT)
    out = _run([sys.executable, "-W", "error", str(script)])
    assert out.returncode == 0, out.stderr
    assert "RESULT [[1.0], [1.0], [1.0]]" in out.stdout


@pytest.mark.slow
def test_python_dash_reading_stdin() -> None:
    out = _run([sys.executable, "-W", "error", "-"], input=SCRIPT)
    assert out.returncode == 0, out.stderr
    assert "RESULT [[1.0], [1.0], [1.0]]" in out.stdout


@pytest.mark.slow
def test_under_a_running_event_loop_like_a_notebook() -> None:
    code = textwrap.dedent("""
        import asyncio
        import rewardhub as rh
        async def cell():
            hub = rh.Hub(entry_points=False)
            spec = {"sources": [{"type": "math-verify"}], "normalize": "none"}
            with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
                a = pipe.score([rh.Sample(prompt="", completion="\\\\boxed{2}", reference="2")])
                b = await pipe.ascore([rh.Sample(prompt="", completion="\\\\boxed{3}", reference="2")])
            print("RESULT", a.vector.values.tolist(), b.vector.values.tolist())
        asyncio.run(cell())
    """)
    out = _run([sys.executable, "-W", "error", "-"], input=code)
    assert out.returncode == 0, out.stderr
    assert "RESULT [[1.0]] [[0.0]]" in out.stdout


def test_no_nan_leaks_into_correct_answers(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion="\\boxed{4}", reference="4")])
    assert not any(math.isnan(v) for v in got[0])


# -- require_evaluated: the value must be stated, not the arithmetic that gives it ------------

#: (completion, reference): the question's arithmetic restated (or left undone), the value
#: never stated; math-verify's own semantics (require_evaluated: false) pay each one
UNEVALUATED = [
    ("We compute 52 + 30", "82"),  # the prompt's own expression echoed
    ("\\boxed{52+30}", "82"),
    ("$17 \\cdot 20$", "340"),
    ("\\boxed{17 \\times 20}", "340"),
    ("Answer: $100 - 18$", "82"),
    ("\\boxed{2^{10}}", "1024"),
    ("\\boxed{\\sqrt{6724}}", "82"),
    ("\\boxed{5!}", "120"),
    ("\\boxed{\\frac{1+1}{4}}", "\\frac{1}{2}"),
    ("\\boxed{-(52+30)}", "-82"),
    ("\\boxed{0.5 + 0.25}", "0.75"),
    ("\\boxed{x = 52 + 30}", "82"),  # the library compares the right-hand side
    ("\\boxed{52+30}", "x = 82"),  # ... and a reference's
    ("<think>52 + 30 = 82</think> We compute 52 + 30", 82),
]

#: (completion, reference): the value stated, in any number notation, or references that are
#: not plain numbers (the library's semantics): each scores 1
STATED = [
    ("82", "82"),
    ("\\boxed{82}", "82"),
    ("52+30=82", "82"),  # the library reads the value after '='
    ("The answer is $52+30=82$.", "82"),
    ("\\boxed{82.0}", "82"),
    ("\\boxed{\\frac{164}{2}}", "82"),  # a fraction of numbers is a number notation
    ("164/2", "82"),
    ("\\boxed{1/2}", "\\frac{1}{2}"),
    ("\\boxed{-\\frac{1}{2}}", "-0.5"),
    ("-1/2", "-0.5"),
    ("\\boxed{3\\frac{1}{2}}", "3.5"),
    ("\\boxed{8.2 \\times 10^{1}}", "82"),
    ("\\boxed{-6.02 \\times 10^{23}}", "-6.02 \\times 10^{23}"),
    ("\\boxed{50\\%}", "0.5"),
    ("\\boxed{\\sqrt{17}}", "4.123105625617661"),  # irrational: the closed form is the value
    ("\\boxed{2\\pi}", "6.283185"),
    ("\\boxed{52+30}", "52+30"),  # an expression as the reference: the library's semantics
    ("\\boxed{x+1}", "1+x"),
    ("\\boxed{[82, 83)}", "[82,83)"),
    ("The probability that Alice wins the game is 2/3.", "2/3"),  # '3.' is the full stop
]


def test_unevaluated_arithmetic_is_refused_against_a_number(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion=c, reference=r) for c, r in UNEVALUATED])
    paid = [case for case, row in zip(UNEVALUATED, got) if not isinstance(row, rh.Fail)]
    assert paid == []
    assert all(row.reason.startswith("unevaluated: the answer ") for row in got)
    assert "52 + 30" in got[0].reason and "require_evaluated" in got[0].reason


def test_stated_values_and_symbolic_references_score_one(source: MathVerify) -> None:
    got = rows(source, [S(prompt="", completion=c, reference=r) for c, r in STATED])
    wrong = [case for case, row in zip(STATED, got) if row != [1.0, 1.0]]
    assert wrong == []


def test_require_evaluated_false_keeps_the_librarys_semantics() -> None:
    assert MathVerifyConfig().require_evaluated is True
    src = MathVerify({"require_evaluated": False, "workers": 1})
    try:
        got = rows(src, [S(prompt="", completion=c, reference=r) for c, r in UNEVALUATED])
    finally:
        src.close()
    assert got == [[1.0]] * len(UNEVALUATED)


def test_the_echo_hack_scores_zero_in_a_pipeline() -> None:
    p = rh.Pipeline.from_yaml(ROOT / "examples" / "redteam" / "sound-math.yaml")
    prompt = "What is 52 + 30? Put the final answer in \\boxed{}."
    completions = ["We compute 52 + 30", "\\boxed{52+30}", "82", "\\boxed{82}", "52+30=82"]
    result = p.score([S(prompt, c, "82") for c in completions])
    assert result.vector.values.ravel().tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    p.close()
