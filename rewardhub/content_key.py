"""Content keys: an exact, process-independent text of any value, for dedup and caches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, overload

import numpy as np


def _exact(value: Any) -> Any:
    """``value`` as JSON data that keeps every distinction Python equality makes (and some it
    does not: ``1`` vs ``1.0`` vs ``True``). Containers carry a type tag, so no two different
    values share an encoding; sets are sorted by their members' encodings, so the result does
    not depend on ``PYTHONHASHSEED``; arrays keep every element (no truncated ``repr``)."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, (list, tuple)):
        return ["list" if isinstance(value, list) else "tuple", [_exact(v) for v in value]]
    if isinstance(value, Mapping):
        items = [[_exact(k), _exact(v)] for k, v in value.items()]
        return ["dict", sorted(items, key=canonical_json)]
    if isinstance(value, (set, frozenset)):
        return ["set", sorted((_exact(v) for v in value), key=canonical_json)]
    if isinstance(value, np.ndarray):
        return ["ndarray", value.dtype.str, list(value.shape), _exact(value.tolist())]
    if isinstance(value, np.generic):
        return ["numpy", value.dtype.str, _exact(value.item())]
    if isinstance(value, (bytes, bytearray)):
        return [type(value).__name__, value.hex()]
    cls = type(value)
    return ["object", f"{cls.__module__}.{cls.__qualname__}", repr(value)]


def canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_PRIMITIVE = {str, int, float, bool, type(None)}


def _flat(value: Any) -> bool:
    """A dict of str keys and JSON scalars (metadata, a chat message): JSON keeps it exactly."""
    return (
        type(value) is dict
        and all(type(k) is str for k in value)
        and all(type(v) in _PRIMITIVE for v in value.values())
    )


def canonical(value: Any) -> str:
    """An exact, process-independent text key of any value (see :func:`_exact`).

    The common shapes — flat metadata, a list of chat messages — are written by ``json.dumps``
    directly (4× faster than the walk), under tags the walk never produces."""
    if _flat(value):
        return '["dict*",' + json.dumps(value, sort_keys=True, ensure_ascii=False) + "]"
    if type(value) is list and all(map(_flat, value)):
        return '["list*",' + json.dumps(value, sort_keys=True, ensure_ascii=False) + "]"
    return canonical_json(_exact(value))


#: The content key of a sample: ``(prompt, completion, reference, metadata)``. A string prompt
#: or reference stays itself (cheap); anything else becomes a tagged ``("json", text)`` pair,
#: so the string ``"4"`` and the number ``4``, or ``None`` and ``""``, never share a key.
SampleKey = tuple[Any, str, Any, str]


T = TypeVar("T")


class computed_once(Generic[T]):
    """``functools.cached_property`` without its per-instance lock (Python 3.11 takes one on
    every first access, which doubled the cost of keying 10k fresh samples)."""

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, cls: type) -> computed_once[T]: ...
    @overload
    def __get__(self, obj: object, cls: type) -> T: ...
    def __get__(self, obj: object | None, cls: type) -> T | computed_once[T]:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value  # later reads find it first: no call at all
        return value
