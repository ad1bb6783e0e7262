"""Text handling of the ``math-verify`` source that needs no maths library: the answer region
(after the reasoning), the lenient extractors asked for by name, and the reference's text.

Imported by the source (in the caller's process) and by its workers; it never imports
math_verify.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "LENIENT",
    "GoldText",
    "answer_region",
    "balanced",
    "extract_answer",
    "gold_text",
    "mark_hedges",
    "prepare_gold",
]

#: extractors that pick a substring before math-verify parses it (``math_verify`` searches the
#: whole answer itself, with the library's own patterns and priorities)
LENIENT = ("boxed", "answer_is", "last_number", "whole")

# a number standing as a token of its own: not inside a word (AZYUK2A), not a LaTeX argument
# ({2} of \frac), not part of a longer number; digits grouped by commas, decimals, a/b, %
_NUMBER = re.compile(
    r"(?<![\w.{^_\\/])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+%?)"
    r"(?![\w{}^_/]|\.\d|,\d)"
)
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:\n|\.(?=\s|$)|$)",
    re.I | re.S,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _last_boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (balanced braces), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    content = text[start:i].strip()
                    if content:
                        return content
                    break
    return None


def extract_answer(
    text: str, extractors: list[str], max_chars: int = 20_000
) -> tuple[str, str] | None:
    """``(extractor, answer text)`` of the first extractor that finds an answer, else None.

    ``math_verify`` answers with the whole (tail of the) text: the worker lets math-verify
    search it. ``last_number`` takes the last number that stands as a token of its own;
    ``whole`` takes the whole text as the answer.
    """
    text = text[-max_chars:]
    for how in extractors:
        if how == "boxed":
            found = _last_boxed(text)
        elif how == "answer_is":
            matches = _ANSWER_IS.findall(text)
            found = matches[-1].strip().strip("$").strip() if matches else None
        elif how == "last_number":
            nums = _NUMBER.findall(text)
            found = nums[-1].strip() if nums else None
        elif how == "whole":  # the completion is the bare answer (verl's prime_math data)
            found = text.strip() or None
        else:
            found = text if text.strip() else None
        if found:
            return how, found
    return None


# "3 or 4", "41, or maybe 42": two plain numbers offered as alternatives
_HEDGE = re.compile(
    r"(?<![\w.$\\{])(-?\d+(?:\.\d+)?)(\s*,?\s*(?:or|and/or)\s+(?:maybe\s+|perhaps\s+)?)"
    r"(-?\d+(?:\.\d+)?)(?![\w$}]|\.\d)",
    re.I,
)


def mark_hedges(text: str) -> str:
    """Plain numbers offered as alternatives (``3 or 4``) written as the LaTeX alternatives
    math-verify reads as one set answer (``$3$ or $4$``): a hedge then matches no single
    reference, as it does when written in LaTeX, instead of its last number being taken."""
    return _HEDGE.sub(r"$\1$ or $\3$", text)


def _opening(delimiter: str) -> str | None:
    """``<think>`` for ``</think>``; None for a delimiter that is not a closing tag."""
    m = re.fullmatch(r"</([^<>/\s]+)>", delimiter)
    return f"<{m.group(1)}>" if m else None


def answer_region(text: str, delimiters: list[str]) -> str | None:
    """The part of a completion that may hold its answer: what follows the last closing
    reasoning delimiter (the first of ``delimiters`` found, as TRL's
    ``reasoning_accuracy_reward``); the whole text when the completion has none; None when a
    reasoning block opens and never closes (no answer was given)."""
    for delim in delimiters:
        if delim in text:
            return text.rsplit(delim, 1)[1]
    for delim in delimiters:
        opening = _opening(delim)
        if opening is not None and opening in text:
            return None
    return text


def gold_text(reference: Any) -> str | None:
    """The reference as text for math-verify, or None when it is not usable."""
    if isinstance(reference, bool):
        return None
    if isinstance(reference, (int, float)):
        return repr(reference)
    if isinstance(reference, str) and reference.strip():
        return reference.strip()
    return None


_GSM8K = re.compile(r"####\s*(.*?)\s*\Z", re.S)
_DELIMITED = re.compile(r"\$|\\\(|\\\[|\\boxed|\\fbox")
_NUMBER_ONLY = re.compile(r"[-+]?[\d\s.,]*\d[\d\s.,]*%?")
# words a reference may hold in its maths (names of functions, set words); anything else of
# three letters or more, outside a LaTeX command or \text{}, is prose
_MATH_WORDS = frozenset((
    "and", "or", "in", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt",
    "max", "min", "gcd", "lcm", "mod", "pi", "inf", "oo", "deg", "arcsin", "arccos", "arctan",
    "sinh", "cosh", "tanh", "det",
))  # fmt: skip
_COMMAND = re.compile(r"\\[A-Za-z]+\*?(?:\s*\{[^{}]*\})?")
_WORD = re.compile(r"[A-Za-z]{3,}")


def balanced(text: str) -> bool:
    """Non-blank LaTeX text whose braces nest (``\\{`` and ``\\}`` are literal braces)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{}" and i and text[i - 1] == "\\":
            continue
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0 and bool(text.strip())


class GoldText:
    """How a reference is handed to math-verify: ``text`` to parse, or ``error`` (why the
    reference is not maths: could not score)."""

    __slots__ = ("error", "text")

    def __init__(self, text: str = "", error: str | None = None) -> None:
        self.text, self.error = text, error


def prepare_gold(text: str) -> GoldText:
    """The reference as math-verify should read it.

    A GSM8K solution (``... #### 42``) gives the number after ``####``. Text with math
    delimiters (``$``, ``\\(``, ``\\[``, ``\\boxed``) is parsed as it is, as the library does;
    a bare number too (``1,22`` is 1.22 there). Other bare text is LaTeX: it is parsed whole
    (on one line: inline maths cannot span lines), unless it is prose (``forty two``), which is
    not an answer math-verify can check.
    """
    m = _GSM8K.search(text)
    if m is not None:
        text = m.group(1).replace(",", "").replace("$", "").strip()
        if not text:
            return GoldText(error="nothing after '####'")
    if _DELIMITED.search(text) or _NUMBER_ONLY.fullmatch(text):
        return GoldText(text)
    words = [w for w in _WORD.findall(_COMMAND.sub(" ", text)) if w.lower() not in _MATH_WORDS]
    if words:
        return GoldText(error=f"the reference is prose, not maths (word {words[0]!r})")
    return GoldText("$" + " ".join(text.split()) + "$")
