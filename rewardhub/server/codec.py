"""Request bodies in and JSON out, for every route: one compiled validator per body shape
(pydantic-core parses and checks the whole body in one pass, into plain dicts), a bound on
nesting, and orjson encoding. Every refusal is a :class:`RequestError` naming the field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict

from rewardhub.batching import Row
from rewardhub.outcome import json_number, record

T = TypeVar("T")

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class SampleIn(TypedDict):
    """One sample: what ``rewardhub score`` reads from a JSONL line."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    prompt: NotRequired[str | list[dict[str, Any]]]
    completion: str
    reference: NotRequired[Any]
    metadata: NotRequired[dict[str, Any]]


class ScoreRequest(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    samples: list[SampleIn]
    weights: NotRequired[dict[str, float] | None]
    """per-call weights overriding the spec's (such a request is scored as its own batch)"""


class AggregateRequest(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    results: list[dict[str, Any]]
    """records as /v1/score returns them: ``{"rewards": {...}, "outcomes"?: {...}}``"""
    method: NotRequired[str | None]
    params: NotRequired[dict[str, Any]]
    weights: NotRequired[dict[str, float] | None]
    normalize: NotRequired[bool | None]
    """true: apply the spec's normalisers to ``rewards`` first; false: aggregate them as given.
    Required when the spec normalises (the server never re-normalises silently)."""


class OpenRLHFRequest(TypedDict):
    """OpenRLHF 0.11's remote reward request (``--reward.remote_url``)."""

    __pydantic_config__ = ConfigDict(allow_inf_nan=False)  # type: ignore[misc]
    query: list[str]
    prompts: list[str]
    labels: NotRequired[list[Any]]


# -- what the routes answer (for the OpenAPI schema; records may carry more keys) --------


class Record(TypedDict):
    rewards: dict[str, float | None]
    total: float | None
    std: NotRequired[dict[str, float | None]]
    outcomes: NotRequired[dict[str, str]]
    unscorable: NotRequired[str]


class ScoreResponse(TypedDict):
    objectives: list[str]
    results: list[Record]


class Total(TypedDict):
    total: float | None
    unscorable: NotRequired[str]


class AggregateResponse(TypedDict):
    method: str
    results: list[Total]


class OpenRLHFResponse(TypedDict):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class FieldError(TypedDict):
    field: str
    message: str


class ErrorBody(TypedDict):
    """Every refusal: a message naming the field and the fix."""

    error: str
    fields: NotRequired[list[FieldError]]


class RequestError(Exception):
    """A request the server refuses: ``status`` and a message naming the field and the fix."""

    def __init__(self, status: int, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.fields is not None:
            out["fields"] = self.fields
        return out


SCORE = TypeAdapter(ScoreRequest)
AGGREGATE = TypeAdapter(AggregateRequest)
OPENRLHF = TypeAdapter(OpenRLHFRequest)
ERROR_BODY = TypeAdapter(ErrorBody)


def parse(adapter: TypeAdapter[T], body: bytes) -> T:
    """``body`` validated as ``adapter``'s type (422 naming the first bad field)."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        fields = [field_error(e) for e in exc.errors(include_url=False, include_input=False)]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        raise RequestError(422, f"{first['field']}: {first['message']}", fields) from None


def field_error(error: Mapping[str, Any]) -> FieldError:
    """One validation error as ``{"field", "message"}``; a body that is not JSON at all is
    named as such (pydantic reports it at a character offset, as if it were an item)."""
    if error.get("type") == "json_invalid":
        loc = error.get("loc", ())
        at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        why = (error.get("ctx") or {}).get("error", "")
        return {
            "field": "body",
            "message": f"not valid JSON{at}{f' ({why})' if why else ''}; send a JSON object "
            'with Content-Type: application/json, e.g. {"samples": [{"prompt": "...", '
            '"completion": "..."}]}',
        }
    return {"field": dotted(error.get("loc", ())), "message": str(error.get("msg", ""))}


def dotted(loc: Sequence[Any]) -> str:
    """``("samples", 0, "completion")`` → ``samples[0].completion`` (``body`` when empty)."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def check_depth(value: Any, limit: int, where: str) -> None:
    """Refuse ``value`` nested deeper than ``limit`` lists/objects (checked without recursion:
    the sample key, the cache and the sources walk values recursively)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth >= limit:
                raise RequestError(
                    422,
                    f"{where}: nested deeper than {limit} levels of lists and objects; flatten "
                    "it (or raise the server's --max-depth)",
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def encode(data: Any) -> bytes:
    """JSON bytes of ``data`` (NaN already turned into null by the records)."""
    import orjson

    try:
        return orjson.dumps(data)
    except TypeError:  # text orjson refuses (a lone surrogate from a source's reason)
        return json.dumps(data, ensure_ascii=True, allow_nan=False).encode()


def openapi_body(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The ``requestBody`` of a route that reads ``adapter``'s type itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(adapter)}},
        }
    }


def inline_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """``adapter``'s JSON Schema with its ``$defs`` inlined (our body types do not recurse),
    so the schema stands alone inside the OpenAPI document."""
    schema = adapter.json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    out: dict[str, Any] = resolve(schema)
    return out


def row_record(row: Row, objectives: Sequence[str]) -> dict[str, Any]:
    """One sample's JSON answer: the record format of :mod:`rewardhub.outcome` (null for no
    value, ``outcomes`` naming the cells that are not values), the total, and ``unscorable``
    with the reason whenever the total is null."""
    rec = record(
        objectives,
        [row.values[o] for o in objectives],
        [row.outcome(o) for o in objectives],
        row.reasons,
        None if row.std is None else [row.std[o] for o in objectives],
    )
    rec["total"] = json_number(row.total)
    if rec["total"] is None:
        rec["unscorable"] = row.unscorable or "the aggregate gave no number (e.g. nothing applied)"
    return rec
