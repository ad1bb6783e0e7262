"""The JSON Schema of a pipeline spec, with every registered type's config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rewardhub.hub import Hub
from rewardhub.registry import Registry
from rewardhub.spec import PipelineSpec


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def _branches(
    registry: Registry[Any], key: str, where: str, defs: dict[str, Any]
) -> list[dict[str, Any]]:
    """One ``if key == name then <where> matches its Config`` rule per registered name."""
    out = []
    for name, cls in registry.items():
        config = _model_schema(cls.Config, defs)
        if where == "config":
            then: dict[str, Any] = {"properties": {"config": config}}
        else:  # params sit beside `method`
            props = dict(config.get("properties", {}))
            props[key] = {"const": name}
            then = {"properties": props, "additionalProperties": False}
        out.append({"if": {"properties": {key: {"const": name}}, "required": [key]}, "then": then})
    return out


def pipeline_schema(hub: Hub) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) for specs valid with ``hub``'s plugins."""
    schema = PipelineSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rewardhub pipeline spec"
    source = defs["SourceSpec"]
    source["properties"]["type"]["enum"] = hub.sources.names()
    source["allOf"] = _branches(hub.sources, "type", "config", defs)
    agg = defs["AggregateSpec"]
    agg["properties"]["method"]["enum"] = hub.aggregators.names()
    agg["allOf"] = _branches(hub.aggregators, "method", "params", defs)
    norm = defs["NormalizeSpec"]
    norm["properties"]["method"]["enum"] = hub.normalizers.names()
    norm["allOf"] = _branches(hub.normalizers, "method", "params", defs)
    return schema
