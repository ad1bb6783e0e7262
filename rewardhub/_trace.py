"""``REWARDHUB_TRACE=1``: which plugin registered what (through pluggy's hook-call monitoring)
and how long each source took on each call (from the engine)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy


def enabled() -> bool:
    return os.environ.get("REWARDHUB_TRACE", "") not in ("", "0")


def emit(message: str) -> None:
    print(f"rewardhub: {message}", file=sys.stderr)


def monitor(pm: pluggy.PluginManager) -> None:
    """Print each hook call's plugin(s), what it registered and how long it took."""
    started: list[tuple[float, set[str]]] = []

    def before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        registry = kwargs.get("registry")
        names = set(registry.names()) if registry is not None else set()
        started.append((time.perf_counter(), names))

    def after(
        outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        t0, names = started.pop()
        ms = (time.perf_counter() - t0) * 1e3
        plugins = ", ".join(i.plugin_name for i in impls if not (i.hookwrapper or i.wrapper))
        registry = kwargs.get("registry")
        what = (
            f" registered {sorted(set(registry.names()) - names)}" if registry is not None else ""
        )
        failed = f" raised {outcome.exception!r}" if outcome.exception is not None else ""
        emit(f"{plugins}.{hook_name}{what}{failed} in {ms:.2f} ms")

    pm.add_hookcall_monitoring(before, after)


def source_timing(source_id: str, source_type: str, n: int, seconds: float) -> None:
    emit(f"source {source_id!r} ({source_type}) scored {n} sample(s) in {seconds * 1e3:.2f} ms")
