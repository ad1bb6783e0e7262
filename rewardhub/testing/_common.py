"""What every check shares: the error type, the skip signal, array comparison, the runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from rewardhub.hub import Hub
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, Registry, SourceRegistry
from rewardhub.types import FloatArray

T = TypeVar("T")

#: a config key no source declares: a config that accepts it would silently ignore typos
UNKNOWN_FIELD = "no_such_field_conformance"


class ConformanceError(AssertionError):
    """A conformance check failed; the message says what to fix."""


def _fail(name: str, what: str, fix: str) -> ConformanceError:
    return ConformanceError(f"{name}: {what}\n  how to fix: {fix}")


class CheckSkipped(Exception):
    """A check that does not apply to this subject (under pytest it is reported as a skip)."""


def _resolve(kind: Registry[T], cls_or_name: type[T] | str, hub: Hub | None) -> type[T]:
    if isinstance(cls_or_name, str):
        return getattr(hub or Hub(), _REGISTRY[type(kind)]).get(cls_or_name)  # type: ignore[no-any-return]
    return cls_or_name


_REGISTRY: dict[type[Any], str] = {
    SourceRegistry: "sources",
    AggregatorRegistry: "aggregators",
    NormalizerRegistry: "normalizers",
}


def _same(a: FloatArray, b: FloatArray, tol: float = 0.0) -> bool:
    if a.shape != b.shape:
        return False
    if tol == 0.0:
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True))


def _first_diff(a: FloatArray, b: FloatArray, tol: float = 0.0) -> str:
    bad = np.argwhere(~np.isclose(a, b, equal_nan=True, rtol=tol, atol=tol))
    if not bad.size:
        return ""
    i = tuple(bad[0].tolist())
    return f" (first difference at {i}: {a[i]!r} vs {b[i]!r})"


def _run_all(checks: Mapping[str, Callable[[], None]], close: Callable[[], None]) -> None:
    try:
        for check in checks.values():
            try:
                check()
            except CheckSkipped:
                continue
    finally:
        close()
