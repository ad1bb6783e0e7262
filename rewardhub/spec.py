"""Pydantic models of a pipeline spec, the YAML/JSON loader and error formatting."""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from rewardhub.errors import SpecError
from rewardhub.types import Objective
from rewardhub.when import Condition

#: the folder that relative file paths in a spec resolve against: set while a spec file loads
#: (``Pipeline.from_yaml``, the CLI) and read by sources that take a path in their config
base_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("base_dir", default=None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSpec(_Strict):
    """One reward source in a pipeline."""

    id: str | None = Field(None, description="unique name of this source (default: its type)")
    type: str = Field(min_length=1, description="a registered source type (`rewardhub plugins`)")
    config: dict[str, Any] = Field(default_factory=dict, description="the source type's config")
    timeout_s: float | None = Field(
        None, gt=0, description="per batch; samples of a batch that times out abstain"
    )
    batch_size: int = Field(256, ge=1, description="samples per call to the source")
    concurrency: int = Field(4, ge=1, description="batches of this source in flight at once")
    weight: float | dict[str, float] | None = Field(
        None,
        description="weight of this source's objectives in the aggregate (one or per objective)",
    )
    rename: dict[str, str] = Field(
        default_factory=dict, description="objective renames, {produced_name: pipeline_name}"
    )
    when: str | None = Field(
        None,
        description="condition on sample fields; samples it rejects abstain as 'not applicable', "
        "e.g. `metadata.data_source in [gsm8k, math]`",
    )
    cache: bool = Field(True, description="cache this source's results")

    @field_validator("when")
    @classmethod
    def _parse_when(cls, v: str | None) -> str | None:
        if v is not None:
            Condition.parse(v)  # raises ValueError with the position of the problem
        return v

    @property
    def name(self) -> str:
        return self.id or self.type


class NormalizeSpec(BaseModel):
    """A normaliser: ``method`` plus its parameters (e.g. ``per: group``)."""

    model_config = ConfigDict(extra="allow")
    method: str = Field("none", description="a registered normalizer")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AggregateSpec(BaseModel):
    """An aggregator: ``method`` plus its parameters (e.g. ``weights``)."""

    model_config = ConfigDict(extra="allow")
    method: str = Field("weighted", description="a registered aggregator")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FillPolicy(_Strict):
    fill: float = Field(description="value that replaces an abstained cell before aggregation")


class CacheSpec(_Strict):
    memory_items: int = Field(100_000, ge=0, description="LRU size per source (0: off)")
    path: str | None = Field(None, description="sqlite file for a persistent, resumable cache")


class PipelineSpec(_Strict):
    """A whole pipeline: sources → normalise → aggregate."""

    objectives: list[str | Objective] | None = Field(
        None, description="the output objectives in order (default: every source's, in order)"
    )
    sources: list[SourceSpec] = Field(min_length=1)
    normalize: NormalizeSpec | list[NormalizeSpec] = Field(default_factory=NormalizeSpec)
    aggregate: AggregateSpec = Field(default_factory=AggregateSpec)
    on_abstain: Literal["skip", "fail"] | FillPolicy = Field(
        "skip",
        description="skip: aggregate over the objectives present; fail: raise; {fill: x}: use x",
    )
    cache: CacheSpec = Field(default_factory=CacheSpec)

    @field_validator("normalize", mode="before")
    @classmethod
    def _normalize_shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):  # [zscore, {method: clip, max: 1}]
            return [{"method": x} if isinstance(x, str) else x for x in v]
        return {"method": v} if isinstance(v, str) else v

    @field_validator("aggregate", mode="before")
    @classmethod
    def _aggregate_shorthand(cls, v: Any) -> Any:
        return {"method": v} if isinstance(v, str) else v

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        seen: dict[str, int] = {}
        for i, s in enumerate(sources):
            if s.name in seen:
                raise ValueError(
                    f"sources[{i}] and sources[{seen[s.name]}] are both named {s.name!r}; "
                    "give each an 'id'"
                )
            seen[s.name] = i
        return sources

    @property
    def objective_specs(self) -> list[Objective] | None:
        if self.objectives is None:
            return None
        return [o if isinstance(o, Objective) else Objective(name=o) for o in self.objectives]

    @property
    def normalizers(self) -> list[NormalizeSpec]:
        return self.normalize if isinstance(self.normalize, list) else [self.normalize]


# -- loading -----------------------------------------------------------------------------------


def format_loc(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("sources", 1, "config", "pattern")`` → ``sources[1].config.pattern``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "Objective", "FillPolicy", "literal['skip','fail']"):
            continue  # union branch names say nothing to a user
        else:
            out += f".{part}" if out else str(part)
    return out


def _field_names(model: Any) -> list[str]:
    return list(getattr(model, "model_fields", None) or getattr(model, "__dataclass_fields__", {}))


def _fields_of(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names allowed at ``loc`` (for 'did you mean' on unknown keys)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or part == getattr(current, "__name__", None):
            continue  # a list index, or the union branch pydantic names by its class
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation) or current
    return _field_names(current)


def _model_in(annotation: Any) -> Any:
    """The first model class inside an annotation (``list[str | Objective] | None`` → Objective)."""
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    ):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _union_noise(errors: list[Any]) -> list[Any]:
    """Drop "not a valid string" from the ``str`` branch of ``str | Model`` when the input was
    meant for the model (another error points inside it)."""
    locs = [tuple(e["loc"]) for e in errors]
    return [
        e
        for e, loc in zip(errors, locs)
        if not (
            loc
            and loc[-1] == "str"
            and any(other[: len(loc) - 1] == loc[:-1] and other != loc for other in locs)
        )
    ]


def errors_to_spec_error(
    exc: ValidationError, model: type[BaseModel], prefix: str = "", what: str = "spec"
) -> SpecError:
    """Turn pydantic's errors into one SpecError whose lines name each path and the fix."""
    lines = []
    first = ""
    for err in _union_noise(exc.errors()):
        loc = err["loc"]
        path = format_loc(loc, prefix) or "(top level)"
        first = first or path
        msg = err["msg"]
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            allowed = _fields_of(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"unknown field {loc[-1]!r}"
            if close:
                msg += f"; did you mean {close[0]!r}?"
            if allowed:
                msg += f" Allowed: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = msg.removeprefix("Value error, ")
            given = err.get("input")
            if not isinstance(given, (dict, list)) and given is not None:
                shown = repr(given)
                msg += f" (got {shown if len(shown) <= 80 else shown[:79] + '…'})"
        lines.append(f"{path}: {msg}")
    if len(lines) == 1:
        return SpecError(lines[0].split(": ", 1)[1], first)
    return SpecError(f"{len(lines)} problems in the {what}:\n  " + "\n  ".join(lines), first)


def parse_spec(data: Mapping[str, Any] | PipelineSpec) -> PipelineSpec:
    """Validate a spec dict (the structure only; source configs are checked by Pipeline)."""
    if isinstance(data, PipelineSpec):
        return data
    if not isinstance(data, Mapping):
        raise SpecError(f"a spec must be a mapping at the top level, got {type(data).__name__}")
    try:
        return PipelineSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise errors_to_spec_error(exc, PipelineSpec) from None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file into a dict, with the file name in any error."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec file {str(p)!r}: {exc.strerror}") from None
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(f"{p}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{p}: a spec must be a mapping at the top level, got {type(data).__name__}"
        )
    return data


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a spec file."""
    return parse_spec(read_spec_file(path))
