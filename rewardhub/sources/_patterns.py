"""User regular expressions, run by the ``regex`` module under a per-match time limit.

Python's ``re`` cannot be interrupted and holds the GIL, so one catastrophic pattern on a
hostile completion (``(a|aa)+$`` on forty ``a`` and a ``b``) stalls the whole process, time-outs
and Ctrl-C included. ``regex`` stops a match at its ``timeout``, counted in CPU seconds of the
process: the limit is half of what is left of the batch's deadline (:func:`rewardhub.time_left`),
so that on a busy machine (where CPU time runs slower than the clock) the check still ends
before the engine gives up on the batch, and never more than :data:`MATCH_TIMEOUT_S`.
"""

from __future__ import annotations

from typing import Any

from rewardhub.source import Abstain, Fail, time_left

#: the longest one match may run, deadline or not
MATCH_TIMEOUT_S = 1.0
#: below this much time left, a match is not even started (the batch ran out of time)
_MIN_S = 0.005


class PatternTimeout(Exception):
    """A match ran out of time: a failed check when the match had its time, else (the batch's
    deadline had already passed) an abstention."""

    def __init__(self, reason: str, completion_caused_it: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.completion_caused_it = completion_caused_it

    def row(self) -> Fail | Abstain:
        return Fail(self.reason) if self.completion_caused_it else Abstain(self.reason)


def compile_pattern(pattern: str, flags: int = 0) -> Any:
    """``pattern`` compiled by ``regex``; ValueError naming the pattern when it is invalid."""
    import regex

    try:
        return regex.compile(pattern, flags)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def flag(name: str) -> int:
    """The ``regex`` flag called ``name`` (IGNORECASE, MULTILINE, DOTALL, VERBOSE, ASCII)."""
    import regex

    return int(getattr(regex, name))


def timed(method: Any, text: str, pattern: str) -> Any:
    """``method(text)`` (a compiled pattern's search, match or fullmatch) under the time limit;
    raises :class:`PatternTimeout` when it runs out."""
    left = time_left(None)
    limit = MATCH_TIMEOUT_S if left is None else min(MATCH_TIMEOUT_S, left * 0.5)
    if limit < _MIN_S:
        raise PatternTimeout(
            f"regex not run: the deadline passed before pattern {pattern!r:.60} was tried", False
        )
    try:
        return method(text, timeout=limit)
    except TimeoutError:
        raise PatternTimeout(
            f"regex timed out after {limit:.3g}s on pattern {pattern!r:.60}", True
        ) from None
