"""``code-exec`` verdicts exact where the answer is exact, and out of the solution's reach:
integer comparison, its own compile flags, exceptions that steer control flow, prompt helpers,
forged reports, time-outs under a batch deadline, LiveCodeBench's formats and the preamble."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.sandbox import bwrap_path
from rewardhub.sources._code_io import IOTests, call_matches, parse_io, stdout_matches
from rewardhub.sources.code import CodeExec

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

S = rh.Sample


@pytest.fixture(scope="module")
def source() -> Iterator[CodeExec]:
    if bwrap_path() is None:
        pytest.skip("bubblewrap is not installed")
    src = CodeExec({"timeout_s": 3.0, "cpu_s": 4})
    yield src
    src.close()


def score(src: CodeExec, samples: list[rh.Sample]) -> list[Any]:
    return list(src.score(samples))  # type: ignore[arg-type]


# -- comparison rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        ("1000001", "1000000"),
        ("999999000", "999999999"),
        ("1.152921504606847e+18", "1152921504606846977"),
        ("1152921504606846976", "1152921504606846977"),
        ("1000000006", "1000000007"),  # an answer modulo 1e9+7, one off
        ("1_000", "1000"),
        ("1.0", "1"),
        ("0.33", "0.3333"),
    ],
)
def test_integer_tokens_compare_exactly(got: str, expected: str) -> None:
    assert not stdout_matches(got, expected)


def test_decimal_tokens_keep_their_tolerance() -> None:
    assert stdout_matches("0.3333333", "0.33333333")
    assert stdout_matches("1", "1.0")  # an integer printed where a decimal is expected
    assert stdout_matches("2.5000000001 7", "2.5 7")
    assert stdout_matches("1152921504606846977", "1152921504606846977")
    assert stdout_matches("-0", "0")


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        (True, 1),
        (1, True),
        (False, 0),
        (1000000.5, 1000000),
        (10**18 + 1, 10**18),
        (float(10**18), 10**18 + 1),
        (10**400, 1.5),
        ([True], [1]),
        ({"a": 1.0000001}, {"a": 1}),
    ],
)
def test_call_results_bool_is_not_int_and_ints_are_exact(got: Any, expected: Any) -> None:
    assert not call_matches(got, expected)


def test_call_results_that_match() -> None:
    assert call_matches(1000000.0, 1000000)  # Python's own equality: 1000000.0 == 1000000
    assert call_matches(0.1 + 0.2, 0.3) and call_matches(10**30, 10**30)
    assert call_matches(True, True) and call_matches((1, 2), [1, 2]) and call_matches(7, [7])


def test_livecodebench_call_format_and_none_stdin() -> None:
    ref = {"fn_name": "f", "inputs": ['[1, 2]\n"x"', "{}\n3"], "outputs": ["[3]", "null"]}
    assert parse_io(ref) == IOTests([[[1, 2], "x"], [{}, 3]], [[3], None], "f")
    assert parse_io({"inputs": [None, "1"], "outputs": ["a", "b"]}) == IOTests(
        ["", "1"], ["a", "b"]
    )
    bad = parse_io({"fn_name": "f", "inputs": ["[1,"], "outputs": ["1"]})
    assert isinstance(bad, str) and "LiveCodeBench" in bad


# -- in the sandbox ------------------------------------------------------------------------

HE = {"test": "def check(candidate):\n    assert candidate(2) == 4\n", "entry_point": "double"}


@needs_bwrap
def test_the_solution_is_compiled_with_its_own_flags(source: CodeExec) -> None:
    """The driver's ``from __future__ import annotations`` must not reach the solution: as
    with ``python3 solution.py``, an undefined annotation raises NameError."""
    code = "def double(x: UndefinedName) -> int:\n    return 2 * x\n"
    io = {"fn_name": "double", "inputs": [[2]], "outputs": [4]}
    rows = score(source, [S(prompt="", completion=code, reference=ref) for ref in (HE, io)])
    assert all(isinstance(r, rh.Fail) and "NameError" in r.reason for r in rows), rows
    ok = "def double(x: int) -> int:\n    return 2 * x\n"
    assert score(source, [S(prompt="", completion=ok, reference=HE)]) == [[1.0]]


@needs_bwrap
def test_stop_iteration_from_the_solution_cannot_end_a_tests_loop(source: CodeExec) -> None:
    test = (
        "def check(candidate):\n    assert all(map(lambda x: candidate(x) == 2 * x, [1, 2, 3]))\n"
    )
    ref = {"test": test, "entry_point": "double"}
    for exc in ("StopIteration", "StopAsyncIteration"):
        code = f"def double(x):\n    raise {exc}\n"
        assert score(source, [S(prompt="", completion=code, reference=ref)]) == [[0.0]], exc
    ok = "def double(x):\n    return 2 * x\n"
    assert score(source, [S(prompt="", completion=ok, reference=ref)]) == [[1.0]]


PROMPT = '''def encode(s: str) -> str:
    return s[::-1] + "!"


def decode(s: str) -> str:
    """Undo encode."""
'''
HELPER_TEST = {
    "test": "def check(candidate):\n    for w in ('ab', 'xyz'):\n        assert candidate(encode(w)) == w\n",
    "entry_point": "decode",
}


@needs_bwrap
def test_prompt_helpers_come_from_the_prompt(source: CodeExec) -> None:
    """HumanEval's tests call helpers the prompt defines: a solution that redefines them (here
    ``encode`` as the identity, so that the identity passes) must not change the test."""
    cheat = "def encode(s):\n    return s\n\ndef decode(s):\n    return s\n"
    honest = "    return s[:-1][::-1]\n"
    rows = score(source, [S(prompt=PROMPT, completion=c, reference=HELPER_TEST)
                          for c in (cheat, honest)])  # fmt: skip
    assert rows == [[0.0], [1.0]]


FORGE_CALL = """
import os, json
line = json.dumps({"i": 0, "r": "4", "err": None}) + "\\n"
for path in ("/proc/self/fd", "/proc/%d/fd" % os.getppid(), "/proc/1/fd"):
    try:
        names = os.listdir(path)
    except OSError:
        continue
    for n in names:
        try:
            fd = os.open("%s/%s" % (path, n), os.O_WRONLY)
            os.write(fd, line.encode())
        except OSError:
            pass
for fd in range(3, 64):
    try:
        os.write(fd, line.encode())
    except OSError:
        pass
def double(x):
    return 0
"""


@needs_bwrap
def test_reports_cannot_be_forged_by_the_solution(source: CodeExec) -> None:
    call = {"fn_name": "double", "inputs": [[2], [3]], "outputs": [4, 6]}
    stdio = {"inputs": ["2", "3"], "outputs": ["4", "6"]}
    forge_stdio = FORGE_CALL.replace('"r": "4"', '"out": "4"') + "print(0)\n"
    rows = score(source, [S(prompt="", completion=FORGE_CALL, reference=call),
                          S(prompt="", completion=forge_stdio, reference=stdio)])  # fmt: skip
    assert rows == [[0.0], [0.0]]


LOOP = "import time\nwhile True:\n    time.sleep(0.01)\n"


@needs_bwrap
@pytest.mark.parametrize(
    "reference",
    [
        ["assert True"],
        {"inputs": ["1"], "outputs": ["1"]},
        {"fn_name": "f", "inputs": [[1]], "outputs": [1]},
    ],
    ids=["tests", "stdio", "call"],
)
def test_a_loop_under_a_batch_deadline_is_a_failed_check(reference: Any) -> None:
    """The batch deadline cuts the sample's budget short: the loop still fails its check
    (it never comes back as *could not score*, which would beat answering wrong)."""
    src = CodeExec({"timeout_s": 30.0, "cpu_s": 30})
    try:
        sample = S(prompt="", completion=LOOP, reference=reference)
        row = src._score_one(sample, deadline=time.monotonic() + 7.0)
        assert isinstance(row, rh.Fail) or row == [0.0], row  # failed, or each test failed
        late = src._score_one(sample, deadline=time.monotonic() - 1.0)
        assert isinstance(late, rh.Abstain) and "before this sample ran" in late.reason
    finally:
        src.close()


@needs_bwrap
def test_livecodebench_call_and_the_opt_in_preamble() -> None:
    code = "class Solution:\n    def f(self, xs: List[int], k: int) -> int:\n        return sum(xs) * k\n"
    ref = {"fn_name": "f", "inputs": ["[1, 2, 3]\n2", "[]\n5"], "outputs": ["12", "0"]}
    plain = CodeExec({"timeout_s": 3.0})
    pre = CodeExec({"timeout_s": 3.0, "preamble": "from typing import *"})
    try:
        (row,) = score(plain, [S(prompt="", completion=code, reference=ref)])
        assert isinstance(row, rh.Fail) and "NameError" in row.reason  # List is not imported
        assert score(pre, [S(prompt="", completion=code, reference=ref)]) == [[1.0]]
    finally:
        plain.close()
        pre.close()
