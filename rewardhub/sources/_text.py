"""Text as rule sources read it: what a reader sees, not the code points a policy can pad.

A completion can dodge a forbidden phrase with a zero-width space (``k\u200bill``) or
fullwidth letters (``ｋｉｌｌ``), pad its length with characters that show nothing, or be
blank. Rule sources compare the :func:`visible` text, and fail a :func:`blank` completion.
"""

from __future__ import annotations

import re
import unicodedata

from rewardhub.source import Fail

#: characters that show nothing: soft hyphen, Mongolian vowel separator, zero-width space,
#: joiners and marks, bidi controls, word joiner and invisible operators, BOM
INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")
_VISIBLE_RE = re.compile(f"[^\\s{INVISIBLE}]")


def strip_invisible(text: str) -> str:
    """``text`` without the characters that show nothing."""
    return text if text.isascii() else _INVISIBLE_RE.sub("", text)


def visible(text: str) -> str:
    """``text`` without invisible characters, NFKC-normalised (fullwidth and other
    compatibility forms become their plain letters)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", _INVISIBLE_RE.sub("", text))


def blank(text: str) -> bool:
    """True when ``text`` shows nothing: empty, whitespace or invisible characters only."""
    return _VISIBLE_RE.search(text) is None


#: the row of a completion that shows nothing: it fails every check of the completion
BLANK = Fail("blank completion")
