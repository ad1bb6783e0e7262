"""Pydantic models of a pipeline spec, the YAML/JSON loader and error formatting."""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import json
import math
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
from pydantic.functional_validators import model_validator

from rewardhub._redact import strip_url_credentials
from rewardhub.errors import SpecError
from rewardhub.types import Objective
from rewardhub.when import Condition

#: the folder that relative file paths in a spec resolve against: set while a spec file loads
#: (``Pipeline.from_yaml``, the CLI) and read by sources that take a path in their config
base_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("base_dir", default=None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: Weights are relative: beyond this magnitude w·r overflows to inf for ordinary rewards and
#: every total turns NaN, so a weight that large is a mistake, not a preference.
MAX_WEIGHT = 1e6


def check_objective_name(name: str) -> str:
    """An objective name must be non-empty text without surrounding blanks (it is a JSON key in
    the output and a ``name=value`` key on the command line)."""
    if not name.strip():
        raise ValueError("an objective name must not be empty")
    if name != name.strip():
        raise ValueError(f"objective name {name!r} has leading or trailing blanks")
    return name


def check_weight(value: float, where: str) -> float:
    """A weight must be finite and at most ``MAX_WEIGHT`` in magnitude."""
    if not math.isfinite(value) or abs(value) > MAX_WEIGHT:
        raise ValueError(
            f"{where} is {value!r}; a weight must be a finite number between "
            f"-{MAX_WEIGHT:g} and {MAX_WEIGHT:g} (weights are relative: scale them down)"
        )
    return value


def check_weights(
    weights: Any, where: str = "weights", objectives: Sequence[str] = (), default: float = 1.0
) -> None:
    """Every value of a ``{objective: weight}`` mapping passes :func:`check_weight`; given the
    pipeline's ``objectives`` (unnamed ones weigh ``default``), not every weight may be 0,
    which would make every total 0/0."""
    if not isinstance(weights, Mapping):
        return  # the aggregator's own config validation reports the wrong type
    for name, value in weights.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check_weight(float(value), f"{where}.{name}")
    if objectives and all(weights.get(o, default) == 0 for o in objectives):
        raise ValueError(
            f"every objective's weight is 0 ({where}), which leaves nothing to aggregate; "
            "give at least one objective a non-zero weight"
        )


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

    @field_validator("rename")
    @classmethod
    def _check_renames(cls, v: dict[str, str]) -> dict[str, str]:
        for new in v.values():
            check_objective_name(new)
        return v

    @field_validator("weight")
    @classmethod
    def _check_weight(cls, v: float | dict[str, float] | None) -> float | dict[str, float] | None:
        if isinstance(v, dict):
            check_weights(v, "weight")
        elif v is not None:
            check_weight(v, "weight")
        return v

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

    @model_validator(mode="after")
    def _check_weights(self) -> AggregateSpec:
        check_weights((self.model_extra or {}).get("weights"), "weights")
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FillPolicy(_Strict):
    fill: float = Field(description="value that replaces an abstained cell before aggregation")


class CacheSpec(_Strict):
    memory_items: int = Field(100_000, ge=0, description="LRU size per source (0: off)")
    path: str | None = Field(None, description="sqlite file for a persistent, resumable cache")
    cheap_sources: bool = Field(
        False,
        description="also keep cheap sources' results (those marked `inline`: rules, regexes) "
        "on disk; by default they are recomputed, which costs less than a disk look-up",
    )


class PipelineSpec(_Strict):
    """A whole pipeline: sources → normalise → aggregate."""

    objectives: list[str | Objective] | None = Field(
        None, description="the output objectives in order (default: every source's, in order)"
    )
    sources: list[SourceSpec] = Field(min_length=1)
    normalize: NormalizeSpec | list[NormalizeSpec] = Field(default_factory=NormalizeSpec)
    aggregate: AggregateSpec = Field(default_factory=AggregateSpec)
    on_abstain: Literal["unscorable", "renormalize", "fail"] | FillPolicy = Field(
        "unscorable",
        description="what a cell the machinery could not score does to its sample's total: "
        "unscorable: the total is NaN (trainers exclude the sample); fail: raise; "
        "{fill: x}: the cell counts as x; renormalize: aggregate over the other objectives "
        "(risky: a completion that breaks a check keeps the credit of the others)",
    )
    cache: CacheSpec = Field(default_factory=CacheSpec)

    @field_validator("on_abstain", mode="before")
    @classmethod
    def _renamed_skip(cls, v: Any) -> Any:
        if v == "skip":
            raise ValueError(
                "'skip' is gone: it gave a sample the credit of its other objectives when a "
                "source could not score it. Use the default 'unscorable' (total NaN), "
                "{fill: value}, 'fail', or 'renormalize' for the old behaviour"
            )
        return v

    @field_validator("objectives")
    @classmethod
    def _objective_names(cls, v: list[str | Objective] | None) -> list[str | Objective] | None:
        seen: set[str] = set()
        for o in v or []:
            name = check_objective_name(o if isinstance(o, str) else o.name)
            if name in seen:
                raise ValueError(f"objective {name!r} is declared twice")
            seen.add(name)
        return v

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
        elif part in (
            "str",
            "Objective",
            "FillPolicy",
            "literal['unscorable','renormalize','fail']",
        ):
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
                shown = strip_url_credentials(repr(given))  # a URL's password stays private
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


#: Limits of a spec file: its size, and its size with every YAML alias expanded (a 600-byte
#: "billion laughs" spec otherwise takes minutes and gigabytes to validate).
MAX_SPEC_BYTES = 4 << 20
MAX_SPEC_VALUES = 200_000
MAX_SPEC_TEXT = 16 << 20


def _check_expansion(root: Any, where: str) -> None:
    """Refuse a composed YAML graph whose expansion is too large, or that contains itself.

    Iterative depth-first walk with a memo per node, so a shared (aliased) node costs once to
    measure however often it is referenced.
    """
    import yaml

    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters) once expanded
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]

    def children(node: Any) -> list[Any]:
        if isinstance(node, yaml.MappingNode):
            return [part for pair in node.value for part in pair]
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            kids = [sizes[id(c)] for c in children(node)]
            values = 1 + sum(v for v, _ in kids)
            text = (len(node.value) if isinstance(node, yaml.ScalarNode) else 0) + sum(
                t for _, t in kids
            )
            if values > MAX_SPEC_VALUES or text > MAX_SPEC_TEXT:
                raise SpecError(
                    f"{where}: with its aliases (*name) expanded, the spec would hold over "
                    f"{MAX_SPEC_VALUES:,} values or {MAX_SPEC_TEXT >> 20} MiB of text; "
                    "refusing it (an alias bomb?)"
                )
            sizes[key] = (values, text)
        elif key in open_nodes:
            raise SpecError(f"{where}: a YAML alias refers to a node that contains it")
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children(node) if id(c) not in sizes)


def _load_yaml(text: str, where: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)  # aliases stay shared: cheap
        if node is None:
            return None
        _check_expansion(node, where)
        return yaml.load(text, Loader=loader)  # a safe loader (C when available)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{where}: invalid YAML{at}: {problem}") from None


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file into a dict, with the file name in any error.

    Files over ``MAX_SPEC_BYTES``, YAML whose aliases expand beyond ``MAX_SPEC_VALUES`` values
    or ``MAX_SPEC_TEXT`` characters, and nesting deeper than the parser can follow are refused.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read spec file {str(p)!r}: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{p}: a spec file may be at most {MAX_SPEC_BYTES >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    try:
        if p.suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        else:
            data = _load_yaml(text, str(p))
    except RecursionError:
        raise SpecError(f"{p}: nested too deeply to read") from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{p}: a spec must be a mapping at the top level, got {type(data).__name__}"
        )
    return data


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a spec file."""
    return parse_spec(read_spec_file(path))


def validate_config(model: type[BaseModel], data: Mapping[str, Any], path: str) -> BaseModel:
    """``data`` validated by a plugin's config model; a SpecError at ``path`` otherwise."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise errors_to_spec_error(exc, model, prefix=path, what="config") from None
