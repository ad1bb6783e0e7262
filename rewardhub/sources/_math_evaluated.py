"""The ``require_evaluated`` rule of the ``math-verify`` source (stricter than the library).

math-verify compares values: against the reference ``82`` it accepts ``52 + 30`` (sympy finds
it equal), so a completion that only restates the question's own arithmetic ("We compute
52 + 30") earns full marks without answering it. With ``require_evaluated``, when the
reference is a stated number, the answer must state a number too:

* a **number notation** is a number as written: an integer or decimal (``82``, ``-3``,
  ``82.0``, ``1,000``), a fraction of two integers (``1/2``, ``\\frac{164}{2}``, a mixed number
  ``3\\frac{1}{2}``: math-verify reads a fraction of numbers as the number itself), a
  percentage (``50\\%``) or scientific notation (``6.02 \\times 10^{23}``, ``10^{3}``: a
  power of ten, with a mantissa from 1 to 10);
* an **unevaluated expression** is any other expression built from number literals only
  whose value is itself a number (sympy's ``doit`` turns it into an integer, a fraction or a
  decimal): ``52 + 30``, ``17 \\cdot 20``, ``2^{10}``, ``\\sqrt{6724}``, ``5!``,
  ``\\frac{1+1}{2}``: the arithmetic was left undone. An irrational closed form (``\\sqrt{17}``,
  ``4\\sqrt{2}``, ``\\frac{1+\\sqrt{5}}{2}``) has no numeral to state; it is the value, and
  keeps the library's semantics (``\\sqrt{17}`` matches ``4.123105625617661``).

The answer is refused when the value math-verify would compare (the right-hand side of an
equation answer, as the library unwraps it: ``52+30=82`` gives ``82``) is an unevaluated
expression and the reference's value is a number notation. References and answers with
symbols or constants (``2\\pi``, ``x+1``), sets, intervals, matrices and relations keep the
library's semantics.

Imported by the workers only (it imports sympy and math_verify).
"""

from __future__ import annotations

from typing import Any

from math_verify.grader import is_assignment_relation, is_equation, take_last_relation
from sympy import Expr, Float, Integer, Mul, Number, Pow, Rational, UnevaluatedExpr

__all__ = ["compared_values", "is_number_notation", "is_unevaluated", "refuses"]

_PERCENT = UnevaluatedExpr(Rational(1, 100))


def is_number_notation(e: Any) -> bool:
    """A number as written (see the module's doc), as math-verify parses it."""
    if isinstance(e, Number):
        return True
    if isinstance(e, Pow):  # 10^{3}: scientific notation, mantissa 1
        return e.base == Integer(10) and isinstance(e.exp, Integer)
    if not isinstance(e, Mul):
        return False
    args = list(e.args)
    if len(args) > 1 and args[0] == Integer(-1):  # a sign: -(3), -6.02 \times 10^{23}
        rest = args[1:]
        if len(rest) == 1 and isinstance(rest[0], Pow) and rest[0].exp == Integer(-1):
            args = [Integer(-1), *rest]  # -1/2: the sign is the numerator
        else:
            args = rest
    if len(args) == 1:
        return is_number_notation(args[0])
    if len(args) != 2:
        return False
    nums = [a for a in args if isinstance(a, Number)]
    if len(nums) != 1:
        return False
    (num,) = nums
    (other,) = [a for a in args if a is not num]
    if other == _PERCENT:  # 50\%
        return True
    if not isinstance(other, Pow):
        return False
    base, exp = other.args
    if _integral(num) and _integral(base) and exp == Integer(-1):
        return True  # a/b of two integers ("is 2/3." reads the full stop as 3.0)
    # scientific notation: m \times 10^{k}, 1 <= |m| < 10
    return base == Integer(10) and isinstance(exp, Integer) and 1 <= abs(num) < 10


def _integral(e: Any) -> bool:
    return isinstance(e, Integer) or (isinstance(e, Float) and float(e).is_integer())


def is_unevaluated(e: Any) -> bool:
    """An expression of number literals only, not a number notation, whose value is a number
    (``52 + 30``; not ``\\sqrt{17}``)."""
    if not isinstance(e, Expr) or not e.args or is_number_notation(e):
        return False
    if not all(isinstance(a, Number) for a in e.atoms()):
        return False
    return isinstance(e.doit(), Number)


def compared_values(gold: Any, pred: Any) -> tuple[Any, Any]:
    """The values math-verify's ``sympy_expr_eq`` compares: an equation answer against a
    reference that is none is read as its last right-hand side; an assignment reference
    (``x = 82``) against an answer that is no equation as its right-hand side."""
    if is_equation(pred) and not is_equation(gold):
        return gold, take_last_relation(pred).rhs
    if is_assignment_relation(gold) and not is_equation(pred):
        return take_last_relation(gold).rhs, pred
    return gold, pred


def refuses(gold: list[Any], pred: list[Any]) -> Any:
    """The unevaluated answer value the rule refuses, or None: a parsed answer whose compared
    value is an unevaluated expression while the reference's is a number notation."""
    for g in gold:
        if isinstance(g, str):
            continue
        for p in pred:
            if isinstance(p, str):
                continue
            try:
                g_value, p_value = compared_values(g, p)
                if is_number_notation(g_value) and is_unevaluated(p_value):
                    return p_value
            except Exception:  # sympy cannot say (nan compared): the library's semantics
                continue
    return None
