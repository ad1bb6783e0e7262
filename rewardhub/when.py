"""``when:`` conditions that route samples to the sources that apply to them.

A small, safe expression language over sample fields, parsed with :mod:`ast` and compiled to
a closure (nothing is ``eval``-ed)::

    metadata.data_source in [gsm8k, math]
    metadata.difficulty >= 3 and not metadata.skip_rm
    reference != null

Fields are ``prompt``, ``completion``, ``reference`` and ``metadata.<key>[.<key>...]`` (a
missing key is ``null``). On the right-hand side bare words are strings; quote values with
spaces or punctuation (``"openai/gsm8k"``). ``null``/``true``/``false`` are literals.

A name that looks like a misspelt field (``metdata.kind``, ``completoin``) is an error with a
"did you mean", never a constant string; so is a comparison with no field in it, which would
be always true or always false. Nesting deeper than :data:`MAX_DEPTH` is an error too.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rewardhub.types import Sample

_ROOTS = ("prompt", "completion", "reference", "metadata")
_LITERALS: dict[str, Any] = {
    "null": None,
    "None": None,
    "true": True,
    "True": True,
    "false": False,
    "False": False,
}
_CMP: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

Getter = Callable[[Sample], Any]

#: deepest nesting of not / and / or / parentheses a condition may have
MAX_DEPTH = 50


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_word(node: ast.expr) -> None:
    """Reject a bare word whose head looks like a misspelt field name (it would otherwise be
    read as a constant string and make the condition always true or always false)."""
    head = node
    while isinstance(head, ast.Attribute):
        head = head.value
    if not isinstance(head, ast.Name) or head.id in _ROOTS or head.id in _LITERALS:
        return
    close = difflib.get_close_matches(head.id, _ROOTS, n=1, cutoff=0.88)
    if close:
        raise ValueError(
            f"unknown name {head.id!r} in {ast.unparse(node)!r}; did you mean {close[0]!r}? "
            "(fields are prompt, completion, reference and metadata.<key>; quote a value "
            "that is meant as a string)"
        )


def _field(node: ast.expr) -> Getter | None:
    """A getter for ``metadata.a.b`` / ``completion``; None if ``node`` is not a field path."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in _ROOTS:
        return None
    parts.append(node.id)
    root, *keys = reversed(parts)
    if root != "metadata":
        if keys:
            raise ValueError(f"{root} has no sub-fields; only metadata.<key> paths nest")
        return lambda s: getattr(s, root)

    def get(s: Sample) -> Any:
        cur: Any = s.metadata
        for k in keys:
            cur = cur.get(k) if isinstance(cur, Mapping) else None
        return cur

    return get


def _value(node: ast.expr) -> Getter:
    getter = _field(node)
    if getter is not None:
        return getter
    if isinstance(node, ast.Constant):
        const = node.value
        return lambda s: const
    if isinstance(node, ast.Name):  # a bare word is a string (or a literal)
        _check_word(node)
        word = _LITERALS.get(node.id, node.id)
        return lambda s: word
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
    ):
        neg = -node.operand.value
        return lambda s: neg
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_value(e) for e in node.elts]
        return lambda s: [g(s) for g in items]
    if isinstance(node, ast.Attribute):  # dotted bare words, e.g. a.b, read as a string
        _check_word(node)
        text = ast.unparse(node)
        return lambda s: text
    raise ValueError(f"unsupported expression {ast.unparse(node)!r}")


def _safe(fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        try:
            return bool(fn(a, b))
        except TypeError:  # e.g. None < 3: the condition does not hold
            return False

    return cmp


def _has_field(node: ast.expr) -> bool:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return any(_has_field(e) for e in node.elts)
    return _field(node) is not None


def _compile(node: ast.expr, depth: int = 0) -> Callable[[Sample], bool]:
    if depth > MAX_DEPTH:
        raise ValueError(
            f"condition is nested more than {MAX_DEPTH} levels deep (not / and / or / "
            "parentheses); simplify it"
        )
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, depth + 1) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda s: all(p(s) for p in parts)
        return lambda s: any(p(s) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, depth + 1)
        return lambda s: not inner(s)
    if isinstance(node, ast.Compare):
        left = _value(node.left)
        steps = [
            (_safe(_CMP[type(op)]), _value(right)) for op, right in zip(node.ops, node.comparators)
        ]
        if not any(_has_field(n) for n in (node.left, *node.comparators)):
            raise ValueError(
                f"{ast.unparse(node)!r} compares no sample field, so it is always true or always "
                "false; compare prompt, completion, reference or metadata.<key>"
            )

        def compare(s: Sample) -> bool:
            a = left(s)
            for fn, right in steps:
                b = right(s)
                if not fn(a, b):
                    return False
                a = b
            return True

        return compare
    getter = _field(node)
    if getter is not None:  # a bare field is truthy
        return lambda s: bool(getter(s))
    if isinstance(node, (ast.Name, ast.Attribute)):
        _check_word(node)
    raise ValueError(
        f"unsupported condition {ast.unparse(node)!r}; use comparisons (==, !=, <, in, not in) "
        "joined by and/or/not"
    )


@dataclass(frozen=True)
class Condition:
    """A parsed ``when:`` condition; call it with a Sample."""

    text: str
    test: Callable[[Sample], bool]

    @classmethod
    def parse(cls, text: str) -> Condition:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(
                f"cannot parse condition {_short(text)!r} at column {exc.offset}: {exc.msg}; "
                "quote values with spaces or punctuation"
            ) from None
        except (RecursionError, MemoryError):  # Python's parser gives up on deep nesting
            raise ValueError(
                f"condition {_short(text)!r} is nested too deeply to parse (at most "
                f"{MAX_DEPTH} levels of not / and / or / parentheses); simplify it"
            ) from None
        return cls(text, _compile(tree.body))

    def __call__(self, sample: Sample) -> bool:
        return self.test(sample)
