"""The ``json-schema`` source: the completion parses as strict JSON and validates against a
schema. A completion that breaks it scores 0; the source abstains only when it cannot judge (a
schema reference that cannot be resolved).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub._jsonl import _finite_float, _no_constant
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores
from rewardhub.sources._patterns import PatternTimeout, compile_pattern, timed
from rewardhub.spec import base_dir
from rewardhub.types import Sample

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)


class JsonSchemaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] | bool | None = Field(
        None, alias="schema", description="the JSON Schema, inline (draft picked by $schema)"
    )
    schema_file: str | None = Field(
        None, description="path of a JSON (or YAML) schema file, relative to the spec's folder"
    )
    extract: Literal["auto", "fence", "raw"] = Field(
        "auto",
        description="auto: the first ```json (or bare ```) fenced block if there is one, else "
        "the whole completion; fence: a fenced block is required; raw: the whole completion",
    )
    format_checker: bool = Field(False, description="also check 'format' keywords (email, date...)")
    valid_json_objective: str = Field(
        "valid_json", description="name of the parses-as-JSON objective"
    )
    schema_objective: str = Field("schema_valid", description="name of the validates objective")

    @model_validator(mode="after")
    def _one_schema(self) -> JsonSchemaConfig:
        if self.schema_ is not None and self.schema_file is not None:
            raise ValueError("give 'schema' or 'schema_file', not both")
        return self


def _read_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON: ``NaN`` and ``Infinity`` (which pass every range check),
    numbers that overflow a float (``-1e999`` would read as ``-inf``) and duplicate keys
    (readers disagree on which one counts) are errors (ValueError)."""
    return json.loads(
        text, parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
    )


@functools.lru_cache(maxsize=256)
def _search(pattern: str) -> Any:
    return compile_pattern(pattern).search


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and timed(_search(patrn), instance, patrn) is None:
        yield ValidationError(f"{instance!r:.80} does not match {patrn!r}")


def _pattern_properties(validator: Any, props: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in props.items():
        for k, v in instance.items():
            if timed(_search(patrn), k, patrn) is not None:
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _prechecked(original: Any) -> Any:
    """A keyword that matches ``patternProperties`` with ``re`` (additionalProperties...):
    the keys are first matched under the time limit, so a key that hangs fails in time."""

    def keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "object"):
            for patrn in schema.get("patternProperties", {}):
                for k in instance:
                    timed(_search(patrn), k, patrn)
        yield from original(validator, value, instance, schema)

    return keyword


def _with_timed_patterns(cls: Any) -> Any:
    """``cls`` with the pattern keywords run by ``regex`` under the time limit."""
    import jsonschema.validators

    keywords: dict[str, Any] = {"pattern": _pattern, "patternProperties": _pattern_properties}
    for name in ("additionalProperties", "unevaluatedProperties"):
        if name in cls.VALIDATORS:
            keywords[name] = _prechecked(cls.VALIDATORS[name])
    return jsonschema.validators.extend(cls, keywords)  # type: ignore[no-untyped-call]


class JsonSchema(RewardSource):
    """The completion parses as JSON (``valid_json``) and validates against a schema (``schema_valid``)."""

    type = "json-schema"
    inline = True
    Config = JsonSchemaConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._base = base_dir.get()
        self._schema = self._load_schema()
        self._validator = self._build_validator() if self._schema is not None else None

    def cache_files(self) -> Sequence[Path]:
        c = self.config
        return () if c.schema_file is None else (_resolve(c.schema_file, self._base),)

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        has_schema = config.schema_ is not None or config.schema_file is not None
        if has_schema:
            return (config.valid_json_objective, config.schema_objective)
        return (config.valid_json_objective,)

    def _load_schema(self) -> Any:
        c = self.config
        if c.schema_file is None:
            return c.schema_
        path = _resolve(c.schema_file, self._base)
        try:
            return _read_structured(path)
        except OSError as exc:
            raise SourceError(
                f"json-schema: cannot read schema_file {str(path)!r}: {exc}"
            ) from None
        except ValueError as exc:  # JSON and YAML errors are ValueErrors (yaml.YAMLError too)
            raise SourceError(
                f"json-schema: schema_file {str(path)!r} is not valid: {exc}"
            ) from None
        except Exception as exc:
            raise SourceError(
                f"json-schema: schema_file {str(path)!r} is not valid: {exc}"
            ) from None

    def _build_validator(self) -> Any:
        import jsonschema
        import jsonschema.validators

        schema = self._schema
        if not isinstance(schema, (dict, bool)):
            raise SourceError(
                f"json-schema: the schema must be a JSON object (or boolean), got {type(schema).__name__}"
            )
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)  # type: ignore[arg-type]
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise SourceError(f"json-schema: malformed schema at {where}: {exc.message}") from None
        checker = cls.FORMAT_CHECKER if self.config.format_checker else None
        return _with_timed_patterns(cls)(schema, format_checker=checker)

    def _extract(self, text: str) -> str | None:
        mode = self.config.extract
        if mode != "raw":
            fenced = None
            for m in _FENCE.finditer(text):
                if m.group(1).lower() in ("", "json", "json5", "jsonc"):
                    fenced = m.group(2)
                    break
            if fenced is not None:
                return fenced.strip()
            if mode == "fence":
                return None
        return text.strip()

    def _row(self, text: str) -> Row:
        with_schema = self._validator is not None
        body = self._extract(text)
        if body is None:
            return [0.0, 0.0] if with_schema else [0.0]
        try:
            doc = strict_json(body)
        except RecursionError:  # the completion's doing: it fails the check
            return Fail("JSON nested too deeply to parse")
        except ValueError:
            return [0.0, 0.0] if with_schema else [0.0]
        if not with_schema:
            return [1.0]
        try:
            error = next(iter(self._validator.iter_errors(doc)), None)  # type: ignore[union-attr]
        except RecursionError:
            return Fail("JSON nested too deeply to validate")
        except PatternTimeout as exc:
            return exc.row()
        except Exception as exc:  # an unresolvable $ref, a broken pattern...
            return Abstain(f"schema could not be applied: {type(exc).__name__}: {exc}")
        return [1.0, 0.0 if error is not None else 1.0]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s.completion) for s in samples]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_validator"] = None  # jsonschema validators do not pickle: rebuilt on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._schema is not None:
            self._validator = self._build_validator()


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(JsonSchema)
