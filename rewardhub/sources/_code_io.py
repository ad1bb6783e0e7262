"""I/O tests in the format of the RL code datasets (APPS, TACO, DeepCoder), and how their
outputs are compared, on the host, outside any process the solution ran in.

``{"inputs": [...], "outputs": [...]}``: each input is a program's stdin (a string, or a list
of lines), each output its expected stdout. With ``"fn_name"`` the tests are call-based: each
input is the list of positional arguments of ``fn_name`` (a top-level function, else a method
of ``Solution()``) and each output its expected return value.
"""

from __future__ import annotations

import math
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
        return IOTests(list(inputs), list(outputs), fn)
    ins, outs = [_text(x) for x in inputs], [_text(x) for x in outputs]
    if any(x is None for x in ins + outs):
        return (
            "malformed reference: stdin/stdout tests need strings (or lists of lines) in "
            "'inputs' and 'outputs'; add 'fn_name' for call-based tests"
        )
    return IOTests(ins, outs)


def _close(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def stdout_matches(got: str, expected: str) -> bool:
    """Lines equal after stripping trailing whitespace and trailing blank lines; else the
    whitespace-separated tokens equal one by one, numbers within 1e-6 relative (1e-9 absolute)."""
    lines_a = [line.rstrip() for line in got.strip("\n").splitlines()]
    lines_b = [line.rstrip() for line in expected.strip("\n").splitlines()]
    while lines_a and not lines_a[-1]:
        lines_a.pop()
    while lines_b and not lines_b[-1]:
        lines_b.pop()
    if lines_a == lines_b:
        return True
    ta, tb = got.split(), expected.split()
    return len(ta) == len(tb) and all(_close(a, b) for a, b in zip(ta, tb))


def _approx(a: Any, b: Any) -> bool:
    """Python equality, with tuples seen as lists (JSON has no tuples) and floats close."""
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    numbers = type(a) in (int, float) and type(b) in (int, float)
    if numbers and float in (type(a), type(b)):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL) or a == b
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(_approx(x, y) for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_approx(a[k], b[k]) for k in a)
    return bool(a == b) if type(a) in _PLAIN and type(b) in _PLAIN else False


_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, set, frozenset, list, dict)


def call_matches(got: Any, expected: Any) -> bool:
    """A call's decoded result against the expected output. The datasets often wrap the
    output in a one-element list: ``[x]`` also accepts ``x``."""
    if _approx(got, expected):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _approx(got, expected[0])
