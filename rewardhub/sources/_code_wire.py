"""Values that cross a sandbox boundary as JSON text, keeping Python's builtin types.

JSON alone turns tuples into lists and int dict keys into strings; here every builtin keeps its
type, so ``2 == 2.0``, ``(1, 2) != [1, 2]`` and ``{1: "a"} == {1: "a"}`` hold on the far side
as in Python. JSON objects are used only as tags:

    int beyond ±2**53  {"I": hex}        float nan/±inf   {"F": "nan"|"inf"|"-inf"}
    tuple              {"T": [...]}      set / frozenset  {"S": [...]} / {"Z": [...]}
    dict               {"D": [[k, v], ...]}               bytes / bytearray {"B": b64} / {"Y": b64}
    complex            {"C": [re, im]}   a handle on an object that stays in its process {"R": id}

:func:`decode` builds only builtin objects (and :class:`Ref` for handles), whatever the text:
a value from untrusted code cannot carry its own ``__eq__`` or ``__hash__`` across.

This module runs inside the sandbox too (shipped as a file beside the driver), so it imports
only the standard library and stays compatible with Python 3.8.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_DEPTH", "Ref", "WireError", "decode", "dumps", "encode", "loads"]

MAX_DEPTH = 200
_BIG = 1 << 53


class WireError(ValueError):
    """A value that cannot be encoded, or text that is not a valid encoding."""


class Ref:
    """A handle on an object that stays in the other process (compared by identity only)."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"<remote object {self.id}>"


def encode(value: Any, handle: Callable[[Any], int] | None = None, depth: int = 0) -> Any:
    """A JSON-ready form of ``value``. ``handle`` turns other objects into a :class:`Ref` id;
    without it they raise :class:`WireError`. Subclasses of builtins travel as the builtin."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    d = depth + 1
    if value is None or isinstance(value, (bool, str)):
        return str.__str__(value) if isinstance(value, str) else value
    if isinstance(value, int):
        v = int.__index__(value)
        return v if -_BIG < v < _BIG else {"I": format(v, "x")}
    if isinstance(value, float):
        f = float.__float__(value)
        return f if math.isfinite(f) else {"F": repr(f)}
    if isinstance(value, list):
        return [encode(x, handle, d) for x in list(value)]
    if isinstance(value, tuple):
        return {"T": [encode(x, handle, d) for x in tuple(value)]}
    if isinstance(value, (set, frozenset)):
        items = [encode(x, handle, d) for x in list(value)]
        return {"S" if isinstance(value, set) else "Z": items}
    if isinstance(value, dict):
        return {"D": [[encode(k, handle, d), encode(v, handle, d)] for k, v in dict.items(value)]}
    if isinstance(value, (bytes, bytearray)):
        tag = "B" if isinstance(value, bytes) else "Y"
        return {tag: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, complex):
        return {"C": [encode(value.real, handle, d), encode(value.imag, handle, d)]}
    if isinstance(value, Ref):
        return {"R": value.id}
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return encode(value.tolist(), handle, d)  # numpy scalars and arrays: their builtin form
    if handle is not None:
        return {"R": handle(value)}
    raise WireError(f"a value of type {type(value).__name__} cannot be sent as data")


def decode(data: Any, depth: int = 0) -> Any:
    """The builtin value ``data`` (from :func:`loads` of :func:`encode`'s JSON) stands for."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    d = depth + 1
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(x, d) for x in data]
    if type(data) is not dict or len(data) != 1:
        raise WireError("malformed value")
    ((tag, body),) = data.items()
    try:
        if tag in ("T", "S", "Z", "D") and type(body) is not list:
            raise WireError("malformed value")
        if tag == "T":
            return tuple(decode(x, d) for x in body)
        if tag == "S":
            return {decode(x, d) for x in body}
        if tag == "Z":
            return frozenset(decode(x, d) for x in body)
        if tag == "D":
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("malformed dict item")
                out[decode(pair[0], d)] = decode(pair[1], d)
            return out
        if tag == "I" and type(body) is str:
            return int(body, 16)
        if tag == "F" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag in ("B", "Y") and type(body) is str:
            raw = base64.b64decode(body.encode("ascii"), validate=True)
            return raw if tag == "B" else bytearray(raw)
        if tag == "C" and type(body) is list and len(body) == 2:
            re, im = decode(body[0], d), decode(body[1], d)
            if type(re) is float and type(im) is float:
                return complex(re, im)
        if tag == "R" and type(body) is int:
            return Ref(body)
    except TypeError as exc:  # an unhashable set member or dict key
        raise WireError(f"malformed value: {exc}") from None
    except ValueError as exc:
        raise WireError(f"malformed value: {exc}") from None
    raise WireError(f"malformed value (tag {tag!r})")


def dumps(value: Any, handle: Callable[[Any], int] | None = None) -> str:
    """``value`` as one line of JSON text."""
    return json.dumps(encode(value, handle), separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    """The value one line of :func:`dumps` text stands for; :class:`WireError` when invalid."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not a valid value: {exc}") from None
    try:
        return decode(data)
    except RecursionError:
        raise WireError("value nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise WireError(f"{name} is not JSON")
