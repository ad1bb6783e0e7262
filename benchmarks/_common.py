"""Shared helpers for the benchmark scripts: timing and the result table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time of ``repeat`` runs in seconds (after ``warmup`` runs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved(
    ours: Callable[[], Any],
    base: Callable[[], Any],
    repeat: int = 7,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """Best times of ``ours`` and ``base`` run alternately, so drift on a shared machine
    (other jobs, CPU steal) hits both alike. ``clock=time.process_time`` measures CPU time."""
    ours()
    base()
    a, b = [], []
    for _ in range(repeat):
        t0 = clock()
        ours()
        t1 = clock()
        base()
        t2 = clock()
        a.append(t1 - t0)
        b.append(t2 - t1)
    return min(a), min(b)


def median_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(rows: list[tuple[str, float, float, str, bool]]) -> None:
    """Print ``name | ours | baseline | ratio | goal | met`` rows (times in ms)."""
    # as wide as the longest name: a longer one shifted its row's columns out from under the
    # header, and its ratio was read as the next row's
    width = max([48, *(len(row[0]) for row in rows)])
    print(f"{'benchmark':{width}} {'ours ms':>10} {'base ms':>10} {'ratio':>8}  goal")
    for name, ours, base, goal, met in rows:
        ratio = ours / base if base else float("nan")
        print(
            f"{name:{width}} {ours * 1e3:10.2f} {base * 1e3:10.2f} {ratio:8.3f}  {goal} {'ok' if met else 'MISSED'}"
        )
