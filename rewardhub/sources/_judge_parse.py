"""Reading a rating out of a chat-completion answer: only an in-range rating the judge clearly
gave pays.

- Text: the whole answer is one label, optionally after ``Rating:`` and before one ``.``/``!``
  (``5``, ``5.``, ``Rating: 5.``, ``Yes.``). Anything else (``-5``, ``+5``, ``#5``, ``5/5``,
  ``I'd say 4``) is no rating.
- JSON mode: an object whose ``rating`` is a label: a number equal to one (1-5; never a
  boolean, list or other type) or a string the text rule accepts.
- Logprobs: at the rating token, the probability on the rating labels must reach ``min_mass``;
  every logprob read there must be a finite number ≤ 0, else that sample's answer is malformed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: what a 1-ULP rounding of a probability of 1 may look like as a logprob
_LOGPROB_SLACK = 1e-6


class Malformed(ValueError):
    """The server's answer breaks the API's format (the machinery's fault, not the answer's)."""


def _label_pattern(labels: Sequence[str]) -> re.Pattern[str]:
    alts = "|".join(re.escape(lab) for lab in labels)
    return re.compile(rf"\s*(?:rating\s*[:=]\s*)?({alts})\s*[.!]?\s*", re.IGNORECASE)


def text_rating(text: str, labels: Sequence[str]) -> int | None:
    """Index of the label the whole ``text`` gives, or None."""
    m = _label_pattern(labels).fullmatch(text)
    if m is None:
        return None
    lower = [lab.lower() for lab in labels]
    return lower.index(m.group(1).lower())


def json_rating(text: str, labels: Sequence[str], values: Sequence[float]) -> int | None:
    """Index of the label a JSON answer's ``rating`` gives, or None."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or "rating" not in obj:
        return None
    r = obj["rating"]
    if isinstance(r, str):
        return text_rating(r, labels)
    if isinstance(r, bool) or not isinstance(r, (int, float)):
        return None
    numeric = [float(lab) if lab.isdigit() else None for lab in labels]
    return numeric.index(float(r)) if float(r) in numeric else None


def _logprob(entry: Any) -> float:
    lp = entry.get("logprob") if isinstance(entry, Mapping) else None
    if isinstance(lp, bool) or not isinstance(lp, (int, float)):
        raise Malformed(f"a logprob is not a number: {lp!r}")
    if not math.isfinite(lp) or lp > _LOGPROB_SLACK:
        raise Malformed(f"a logprob is not a finite number ≤ 0: {lp!r}")
    return float(lp)


def logprob_mass(logprobs: Any, labels: Sequence[str]) -> list[float] | None:
    """Probability on each label at the first answer token that is a label, or None when no
    token is. Raises :class:`Malformed` on a logprob that is not a finite number ≤ 0."""
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(content, list):
        return None
    lookup = {lab.lower(): j for j, lab in enumerate(labels)}
    for tok in content:
        if not isinstance(tok, Mapping) or str(tok.get("token", "")).strip().lower() not in lookup:
            continue
        alts = tok.get("top_logprobs") or [tok]
        if not isinstance(alts, list):
            raise Malformed("top_logprobs is not a list")
        probs = [0.0] * len(labels)
        for alt in alts:
            lp = _logprob(alt)  # every entry is checked, rating or not
            j = lookup.get(str(alt.get("token", "")).strip().lower())
            if j is not None:
                probs[j] += math.exp(lp)
        return probs
    return None
