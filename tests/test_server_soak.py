"""Soak of the reward server at a CI size (benchmarks/server_soak.py runs 50k): mixed routes
with 1% hostile clients; every valid request answered correctly, every hostile one refused
with its code, flat memory and no file-descriptor growth."""

from __future__ import annotations

import pytest

from benchmarks.server_soak import HOSTILE, soak


@pytest.mark.slow
def test_soak_mixed_routes_with_hostile_clients() -> None:
    figures = soak(total=3000, hostile_share=0.01)
    assert figures.wrong == []
    assert all(n >= 5 for n in figures.hostile.values()), figures.hostile
    assert set(figures.hostile) == set(HOSTILE)
    assert figures.rss_ratio <= 1.2, figures.rss_mb
    assert figures.fds[1] <= figures.fds[0], figures.fds
