"""The one retry schedule of every HTTP caller (the clients, the OpenAI-compatible judge)."""

from __future__ import annotations

import contextlib
import random
import time


class Backoff:
    """Exponential backoff with jitter, honouring ``Retry-After`` and a deadline.

    Attempt ``a`` waits a random time in ``[d/2, d]`` with ``d = min(max_s, base_s * 2**a)``,
    raised to the server's ``Retry-After`` seconds when it sends one (capped at ``max_s``; an
    HTTP-date keeps the exponential delay)."""

    def __init__(self, retries: int, base_s: float, max_s: float) -> None:
        self.retries = retries
        self.base_s = base_s
        self.max_s = max_s

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        d = min(self.max_s, self.base_s * 2**attempt)
        wait = random.uniform(d / 2, d)
        if retry_after:
            with contextlib.suppress(ValueError):
                wait = max(wait, min(float(retry_after), self.max_s))
        return wait

    def pause(
        self, attempt: int, retry_after: str | None = None, deadline: float | None = None
    ) -> float | None:
        """How long to wait before the next attempt; None when there is none to make (the
        retries are spent, or the wait would pass ``deadline``, a ``time.monotonic()``)."""
        if attempt >= self.retries:
            return None
        wait = self.delay(attempt, retry_after)
        if deadline is not None and time.monotonic() + wait >= deadline:
            return None
        return wait
