"""The JSON Schema of a pipeline spec, with every registered type's config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rewardhub.errors import RewardHubError
from rewardhub.hub import Hub
from rewardhub.registry import Registry
from rewardhub.spec import PipelineSpec


def _model_schema(model: type[BaseModel], namespace: str, defs: dict[str, Any]) -> dict[str, Any]:
    """``model``'s schema, its nested models added to ``defs`` under ``namespace``.

    Plugins are written independently, so two of them may nest different models of the same
    class name: keyed by name alone, one would overwrite the other and the schema would then
    reject valid specs. Each registered type's models live under its own prefix instead.
    """
    pointer = namespace.replace("~", "~0").replace("/", "~1")
    schema = model.model_json_schema(ref_template=f"#/$defs/{pointer}.{{model}}")
    for name, sub in schema.pop("$defs", {}).items():
        key = f"{namespace}.{name}"
        if key in defs and defs[key] != sub:  # cannot happen: one registration per namespace
            raise RewardHubError(f"schema: two different definitions of {key!r}")
        defs[key] = sub
    return schema


def _branches(
    registry: Registry[Any], key: str, where: str, defs: dict[str, Any], prefix: str
) -> list[dict[str, Any]]:
    """One ``if key == name then <where> matches its Config`` rule per registered name."""
    out = []
    for name, cls in registry.items():
        config = _model_schema(cls.Config, f"{prefix}:{name}", defs)
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
    source["allOf"] = _branches(hub.sources, "type", "config", defs, "source")
    agg = defs["AggregateSpec"]
    agg["properties"]["method"]["enum"] = hub.aggregators.names()
    agg["allOf"] = _branches(hub.aggregators, "method", "params", defs, "aggregator")
    norm = defs["NormalizeSpec"]
    norm["properties"]["method"]["enum"] = hub.normalizers.names()
    norm["allOf"] = _branches(hub.normalizers, "method", "params", defs, "normalizer")
    return schema
