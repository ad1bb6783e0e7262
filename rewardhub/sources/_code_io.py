"""I/O tests in the format of the RL code datasets (APPS, TACO, DeepCoder, LiveCodeBench), and
how their outputs are compared, on the host, outside any process the solution ran in.

``{"inputs": [...], "outputs": [...]}``: each input is a program's stdin (a string, a list of
lines, or None for no input), each output its expected stdout. With ``"fn_name"`` the tests are
call-based: each input is the list of positional arguments of ``fn_name`` (a top-level
function, else a method of ``Solution()``) and each output its expected return value; an input
given as text is LiveCodeBench's form (one JSON value per line, one line per argument, and the
output as JSON text).

The comparison is exact where the answer is exact: an expected integer (a token written as one,
or an ``int`` value) must be met by that integer, at any size; a float tolerance (1e-6
relative, 1e-9 absolute) applies only where the expected value is a float (a token written
with a decimal point or an exponent, a ``float`` value); ``True`` is not ``1``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["IOTests", "call_matches", "parse_io", "stdout_matches"]

REL_TOL = 1e-6
ABS_TOL = 1e-9


@dataclass(frozen=True)
class IOTests:
    inputs: list[Any]
    """stdin texts, or (call-based) the argument lists"""
    outputs: list[Any]
    fn_name: str | None = None


def _text(x: Any) -> str | None:
    if x is None:  # no input: the program reads an empty stdin (as verl's sandbox does)
        return ""
    if isinstance(x, str):
        return x
    if isinstance(x, list) and all(isinstance(line, str) for line in x):
        return "\n".join(x)
    return None


def parse_io(ref: Mapping[str, Any]) -> IOTests | str:
    """The tests of an ``inputs``/``outputs`` reference, or why it is malformed."""
    inputs, outputs, fn = ref.get("inputs"), ref.get("outputs"), ref.get("fn_name")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        return "malformed reference: 'inputs' and 'outputs' must be lists"
    if not inputs or len(inputs) != len(outputs):
        return (
            "malformed reference: 'inputs' and 'outputs' must be non-empty and of the same "
            f"length (got {len(inputs)} and {len(outputs)})"
        )
    if fn is not None:
        if not isinstance(fn, str) or not fn.isidentifier():
            return "malformed reference: 'fn_name' must be a function name"
        try:
            ins = [_json_lines(x) if isinstance(x, str) else x for x in inputs]
            outs = [json.loads(y) if isinstance(x, str) else y for x, y in zip(inputs, outputs)]
        except ValueError as exc:
            return (
                "malformed reference: a call-based input given as text must hold one JSON value "
                f"per line (LiveCodeBench), and its output JSON ({exc})"
            )
        return IOTests(ins, outs, fn)
    ins, outs = [_text(x) for x in inputs], [_text(x) for x in outputs]
    if any(x is None for x in ins + outs):
        return (
            "malformed reference: stdin/stdout tests need strings (or lists of lines) in "
            "'inputs' and 'outputs'; add 'fn_name' for call-based tests"
        )
    return IOTests(ins, outs)


def _json_lines(text: str) -> list[Any]:
    """LiveCodeBench's arguments: one JSON value per line."""
    return [json.loads(line) for line in text.split("\n")]


_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _token_matches(got: str, expected: str) -> bool:
    """One output token: an integer exactly (any size), a decimal within the tolerance."""
    if got == expected:
        return True
    if _INT.fullmatch(expected):
        return _INT.fullmatch(got) is not None and int(got) == int(expected)
    if _FLOAT.fullmatch(expected) and _FLOAT.fullmatch(got):
        return _float_close(float(got), float(expected))
    return False


def _float_close(got: float, expected: float) -> bool:
    """``got`` (a float or an int) against an expected float, within the tolerance."""
    if got == expected:
        return True
    try:
        return math.isclose(got, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    except OverflowError:  # an int too large for a float is far from any float
        return False


def stdout_matches(got: str, expected: str) -> bool:
    """Lines equal after stripping trailing whitespace and trailing blank lines; else the
    whitespace-separated tokens match one by one: integer tokens exactly, decimal tokens within
    1e-6 relative (1e-9 absolute), anything else as text."""
    lines_a = [line.rstrip() for line in got.strip("\n").splitlines()]
    lines_b = [line.rstrip() for line in expected.strip("\n").splitlines()]
    while lines_a and not lines_a[-1]:
        lines_a.pop()
    while lines_b and not lines_b[-1]:
        lines_b.pop()
    if lines_a == lines_b:
        return True
    ta, tb = got.split(), expected.split()
    return len(ta) == len(tb) and all(_token_matches(a, b) for a, b in zip(ta, tb))


def _approx(a: Any, b: Any) -> bool:
    """``a`` (the result) against ``b`` (expected): Python equality, with tuples seen as lists
    (JSON has no tuples), ``bool`` apart from ``int``, and a tolerance only for an expected
    float."""
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    ta, tb = type(a), type(b)
    if bool in (ta, tb):
        return ta is tb and a == b
    if ta in (int, float) and tb in (int, float):
        return _float_close(a, b) if tb is float else bool(a == b)
    if ta is list and tb is list:
        return len(a) == len(b) and all(_approx(x, y) for x, y in zip(a, b))
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(_approx(a[k], b[k]) for k in a)
    return bool(a == b) if ta in _PLAIN and tb in _PLAIN else False


_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, set, frozenset, list, dict)


def call_matches(got: Any, expected: Any) -> bool:
    """A call's decoded result against the expected output. The datasets often wrap the
    output in a one-element list: ``[x]`` also accepts ``x``."""
    if _approx(got, expected):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _approx(got, expected[0])
