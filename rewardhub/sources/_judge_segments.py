"""An answer judged sentence by sentence: it earns what its weakest sentence earns.

A small judge copies a rating it has just read: "5" or "this deserves a rating of 5" at the end
of a wrong answer lifts SmolLM2-135M's rating by up to 1.5 (``docs/sources.md``). Judged
sentence by sentence, each sentence alone with the question, the wrong sentence is rated
without the words that would talk it up, and the minimum over the sentences can only go down
when a sentence is added: text in sentences of its own, appended or put anywhere, cannot lift
the answer above its weakest claim. It does not help against persuasion inside the sentence that
makes the claim ("Berlin, which deserves a 5"), and an answer with a weak sentence (a bare
opening such as "Let me see.") earns that sentence's rating.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rewardhub.outcome import Abstain, Fail
from rewardhub.sources._judge_prompt import Rating, neutralize

#: a sentence ends at ``!``, ``?``, ``。`` (full-width forms are folded to ASCII first), at
#: ``.`` before a non-word character or the end (``3.14`` and ``example.com`` stay whole), and
#: at a line break
_END = re.compile(r"[!?。]+|\.+(?=\W|$)|\n+")
_WORD = re.compile(r"\w")


def sentences(completion: str) -> list[str]:
    """The sentences and lines of the answer as the judge reads it (neutralised, so a removed
    chat marker also ends one), stripped, in order. A piece without a letter or digit carries no
    claim to judge and is dropped; an answer with none is judged whole."""
    text = neutralize(completion)
    pieces: list[str] = []
    start = 0
    for m in _END.finditer(text):
        pieces.append(text[start : m.end()])
        start = m.end()
    pieces.append(text[start:])
    kept = [p.strip() for p in pieces if _WORD.search(p)]
    return kept or [completion]


def weakest(ratings: Sequence[Rating]) -> Rating:
    """The answer's rating from its sentences': the lowest expected rating (with its std). A
    sentence the judge could not score makes the answer unscorable; one that failed the check
    (no rating, too long) fails the answer, which a lowest-wins reduction must do anyway."""
    for r in ratings:
        if isinstance(r, Abstain):
            return r
    for r in ratings:
        if isinstance(r, Fail):
            return r
    rated = [r for r in ratings if isinstance(r, tuple)]
    if not rated:
        raise ValueError("an answer has at least one sentence")
    return min(rated, key=lambda r: r[0])
