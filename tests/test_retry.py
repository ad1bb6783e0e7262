"""The one retry schedule shared by the clients and the OpenAI-compatible judge."""

from __future__ import annotations

import time

from rewardhub._retry import Backoff


def test_delays_grow_with_jitter_and_are_capped() -> None:
    b = Backoff(retries=5, base_s=0.1, max_s=0.5)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.5), (9, 0.5)]:
        for _ in range(20):
            assert ceiling / 2 <= b.delay(attempt) <= ceiling


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    b = Backoff(retries=3, base_s=0.01, max_s=2.0)
    assert b.delay(0, "1.5") == 1.5
    assert b.delay(0, "60") == 2.0
    assert b.delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= 0.01  # a date: the schedule's own


def test_no_pause_past_the_retries_or_the_deadline() -> None:
    b = Backoff(retries=2, base_s=0.1, max_s=0.1)
    assert b.pause(0) is not None and b.pause(1) is not None
    assert b.pause(2) is None
    assert b.pause(0, deadline=time.monotonic() + 0.01) is None
    assert Backoff(2, 0.1, 10.0).pause(0, "5", deadline=time.monotonic() + 1.0) is None
