"""Secrets out of the text that people, logs and the cache read: API keys and URL credentials.

Scrub a text *whole*, before cutting it to length: a key cut in half by truncation no longer
matches the key, and its first half would escape a later scrub.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: ``scheme://user:password@`` (or ``scheme://token@``) at the start of a URL's authority
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")
#: a secret's prefix this long or longer is a leak too (a server echoes a key cut short)
MIN_PREFIX = 6
MASK = "***"


def strip_url_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(rf"\1{MASK}@", text)


def _mask(text: str, secret: str) -> str:
    """Mask ``secret`` and every prefix of it of ``MIN_PREFIX`` characters or more."""
    if len(secret) < MIN_PREFIX:
        return text.replace(secret, MASK)
    head = secret[:MIN_PREFIX]
    out: list[str] = []
    pos = 0
    while (start := text.find(head, pos)) >= 0:
        end = start + MIN_PREFIX
        while end - start < len(secret) and end < len(text) and text[end] == secret[end - start]:
            end += 1
        out += [text[pos:start], MASK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any of ``secrets`` (nor a prefix of one of 6+ characters) and without
    URL credentials. Call it on the whole text, then truncate."""
    for secret in secrets:
        if secret:
            text = _mask(text, secret)
    return strip_url_credentials(text)


def scrub_cut(text: str, limit: int, secrets: Iterable[str | None] = ()) -> str:
    """:func:`scrub`, then at most ``limit`` characters (in that order: see the module doc)."""
    return scrub(text, secrets)[:limit]
