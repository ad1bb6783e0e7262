"""Policy-as-code sources: ``rego`` (OPA's language, run by regorus) and ``cel``.

Both see the same input document per sample: ``prompt`` (the prompt as text), ``messages``
(the chat messages, or an empty list), ``completion``, ``metadata`` and ``reference``.
Lone surrogates (text that was not valid UTF-8) are replaced by U+FFFD before evaluation.

The engines run in worker processes (:mod:`rewardhub.sources._policy_worker`): policies are
loaded and checked there (a policy that loads badly is a :class:`SourceError` naming the file,
line and message; one that crashes the engine is a SourceError too), and each sample is
evaluated there under ``eval_timeout_s``. Outcomes per sample: an evaluation error abstains
(NaN with the error); a worker that dies abstains ("worker died (signal SIGSEGV)") and only
that sample is lost; an evaluation that runs past its limit, or makes the engine panic, or a
completion over ``max_chars``, fails the check (the input caused it).
"""

from __future__ import annotations

import json
import math
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardhub._optional import require
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores, current_deadline
from rewardhub.spec import base_dir
from rewardhub.types import Sample
from rewardhub.workers import NOT_STARTED, TIMEOUT, Failure, WorkerPool, shared_pool

# -- the input document --------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes) replaced by U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def _clean(value: Any) -> Any:
    """A JSON-like copy of ``value`` with clean strings (other objects become their str)."""
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    return clean_text(str(value))


def input_document(sample: Sample) -> dict[str, Any]:
    """The document policies see as ``input`` (Rego) or as variables (CEL)."""
    messages = sample.prompt if isinstance(sample.prompt, list) else []
    return {
        "prompt": clean_text(sample.prompt_text),
        "messages": _clean(messages) if messages else [],
        "completion": clean_text(sample.completion),
        "metadata": _clean(sample.metadata) if sample.metadata else {},
        "reference": _clean(sample.reference),
    }


def _too_long(sample: Sample, max_chars: int | None) -> Fail | None:
    """A completion too long to evaluate fails the check: growing a completion must never be
    a way around a policy."""
    if max_chars is not None and len(sample.completion) > max_chars:
        return Fail(
            f"completion has {len(sample.completion)} characters, over max_chars={max_chars}; "
            "raise max_chars to evaluate it"
        )
    return None


# -- the worker processes ------------------------------------------------------------------

WORKER_MODULE = "rewardhub.sources._policy_worker"
#: the longest loading and checking the policies may take in a fresh worker
CHECK_TIMEOUT_S = 60.0


class _PolicyWorkers:
    """What the rego and cel sources share: their engine runs in worker processes
    (:mod:`rewardhub.sources._policy_worker`), where a crash loses one worker, not the run,
    and an evaluation that hangs is killed at its time limit."""

    config: Any
    _pool: WorkerPool | None
    _release: Any = None  # a weakref.finalize calling the pool's release(keep)
    _name: str

    def _init(self) -> dict[str, Any]:
        raise NotImplementedError

    def _workers(self) -> WorkerPool:
        if self._pool is None:  # shared with identical sources (see workers.shared_pool)
            self._pool, release = shared_pool(WORKER_MODULE, self.config.workers, self._init())
            self._release = weakref.finalize(self, release, True)  # a source never closed too
        return self._pool

    def _check(self, paths: list[str]) -> None:
        """Load and check the policies in a worker: a SourceError if they are unusable."""
        try:
            (answer,) = self._workers().map([{"op": "check", "paths": paths}], CHECK_TIMEOUT_S)
        except Exception:
            self.close(keep=False)
            raise
        if isinstance(answer, Failure):
            self.close(keep=False)
            why = (
                f"did not finish in {CHECK_TIMEOUT_S:g}s"
                if answer.reason == TIMEOUT
                else f"crashed the policy engine: {answer.reason}"
            )
            raise SourceError(f"{self._name}: loading and checking the policies {why}")
        if "error" in answer:
            self.close(keep=False)
            raise SourceError(answer["error"])

    def _evaluate(self, docs: list[dict[str, Any]]) -> list[dict[str, Any] | Row]:
        """Each document's answer from a worker, or the row of one that got none: a time-out
        fails the check (the input made the engine hang), a dead worker abstains."""
        limit = self.config.eval_timeout_s
        answers = self._workers().map(
            [{"op": "eval", "input": d} for d in docs], limit, deadline=current_deadline()
        )
        out: list[dict[str, Any] | Row] = []
        for answer in answers:
            if not isinstance(answer, Failure):
                out.append(
                    Abstain(f"{self._name}: {answer['error']}") if "error" in answer else answer
                )
            elif answer.reason == TIMEOUT:
                out.append(Fail(f"{self._name}: evaluation ran past its time limit ({limit:g}s)"))
            elif answer.reason == NOT_STARTED:
                out.append(Abstain(f"{self._name}: not evaluated: the batch's {NOT_STARTED}"))
            else:
                out.append(Abstain(f"{self._name}: {answer.reason}"))
        return out

    def _score(self, samples: list[Sample], row: Callable[[dict[str, Any]], Row]) -> list[Row]:
        """Rows of the samples: too long ones fail unevaluated, the others go to the workers."""
        out: list[Row] = [_too_long(s, self.config.max_chars) for s in samples]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            answers = self._evaluate([input_document(samples[i]) for i in todo])
            for i, answer in zip(todo, answers):
                out[i] = row(answer) if isinstance(answer, dict) else answer
        return out

    def close(self, keep: bool = True) -> None:
        """Let go of the workers (kept warm for an identical source unless ``keep`` is false)."""
        release, self._release, self._pool = self._release, None, None
        detached = release.detach() if release is not None else None
        if detached is not None:  # (source, release, args, kwargs)
            detached[1](keep)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = state["_release"] = None  # each process starts its own workers
        return state


# -- rego ----------------------------------------------------------------------------------

DEFAULT_WEIGHTS = {"low": 0.25, "medium": 0.5, "high": 1.0, "critical": 2.0}


class RegoRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str = Field(
        description="rule name under 'package' (e.g. deny), or a full path (data.pkg.deny)"
    )
    objective: str | None = Field(None, description="objective name (default: the rule name)")
    kind: Literal["boolean", "number", "penalty", "veto"] = Field(
        "boolean",
        description="boolean: true → 1, false or undefined → 0; number: the rule's number "
        "(undefined abstains unless 'default' is set); penalty: −Σ severity weights of the "
        "rule's violations (a set, array or object of messages or {msg, severity} objects); "
        "veto: 0 when the rule is true or a non-empty collection, else 1",
    )
    severity_field: str = Field(
        "severity", description="penalty: the field of a violation object holding its severity"
    )
    weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="penalty: weight of each severity name (a numeric severity is its own weight)",
    )
    default_weight: float = Field(
        1.0, ge=0, description="penalty: weight of a violation without a severity (e.g. a string)"
    )
    max_penalty: float | None = Field(
        None, gt=0, description="penalty: the penalty is at least −max_penalty (bounded form)"
    )
    default: float | None = Field(None, description="number: value when the rule is undefined")

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, w in v.items() if not (w >= 0 and math.isfinite(w)))
        if bad:
            raise ValueError(f"severity weights must be finite and ≥ 0: {bad}")
        return v


class _PolicyLimits(BaseModel):
    """The limits the rego and cel sources share (their engines run in worker processes)."""

    model_config = ConfigDict(extra="forbid")
    max_chars: int | None = Field(
        1_000_000, ge=1, description="longer completions fail the check without being evaluated"
    )
    workers: int = Field(
        2, ge=1, le=64, description="worker processes evaluating the policies (see docs/specs.md)"
    )
    eval_timeout_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="the longest one sample's evaluation may run; one that runs longer is "
        "killed and fails the check (the input made the engine hang)",
    )


class RegoConfig(_PolicyLimits):
    policies: list[str] = Field(
        min_length=1,
        description="policy files or folders (every *.rego inside, *_test.rego excluded), "
        "relative to the spec's folder",
    )
    package: str | None = Field(
        None, description="package the rule names are relative to, e.g. argen or data.argen"
    )
    rules: list[RegoRule] = Field(
        min_length=1, description="the rules to evaluate, one objective each"
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="a data document (data.*) for the policies"
    )
    data_files: list[str] = Field(default_factory=list, description="JSON files merged into data")
    rego_v0: bool = Field(False, description="parse policies as Rego v0 (default: v1)")

    @model_validator(mode="after")
    def _unique_objectives(self) -> RegoConfig:
        names = [r.objective or r.rule.rsplit(".", 1)[-1] for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two rules map to the same objective {dupes}; set 'objective'")
        return self


def _policy_files(entries: list[str], base: Path | None) -> list[Path]:
    files: list[Path] = []
    for entry in entries:
        p = Path(entry)
        if not p.is_absolute() and base is not None:
            p = base / p
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.rego") if not f.name.endswith("_test.rego"))
            if not found:
                raise SourceError(f"rego: folder {str(p)!r} has no .rego files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SourceError(f"rego: policy {entry!r} does not exist (looked for {str(p)!r})")
    return files


_EVAL_PACKAGE = "rewardhub_eval"
_RESULT = f"data.{_EVAL_PACKAGE}.result"
_UNDEFINED = {"rewardhub_undefined": True}


def _collector(paths: list[str]) -> str:
    """A module whose ``result`` is the array of every rule's value (a marker if undefined)."""
    lines = [f"package {_EVAL_PACKAGE}", "", "import rego.v1", ""]
    for i, path in enumerate(paths):
        lines += [f"default r{i} := {json.dumps(_UNDEFINED)}", "", f"r{i} := {path}", ""]
    lines.append(f"result := [{', '.join(f'r{i}' for i in range(len(paths)))}]")
    return "\n".join(lines) + "\n"


class _RegoRule:
    """A configured rule: full path, kind and the way its value becomes a number."""

    def __init__(self, cfg: RegoRule, package: str | None) -> None:
        self.cfg = cfg
        self.kind = cfg.kind
        if cfg.rule.startswith("data.") or package is None:
            path = cfg.rule if cfg.rule.startswith("data.") else f"data.{cfg.rule}"
        else:
            path = f"{package}.{cfg.rule}"
        self.path = path

    def value(self, raw: Any) -> float:
        """The objective value of the rule's result, None when undefined (ValueError: wrong shape)."""
        kind, cfg = self.kind, self.cfg
        if kind == "boolean":
            if raw is None:
                return 0.0
            if isinstance(raw, bool):
                return float(raw)
            raise ValueError(f"a boolean rule must be true or false, got {_kind_of(raw)}")
        if kind == "number":
            if raw is None:
                if cfg.default is None:
                    raise ValueError(
                        "is undefined for this input (set 'default' to give it a value)"
                    )
                return float(cfg.default)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ValueError(f"a number rule must be a number, got {_kind_of(raw)}")
            if not math.isfinite(raw):
                raise ValueError(f"returned {raw}")
            return float(raw)
        items = _violations(raw, cfg.severity_field)
        if kind == "veto":
            return 0.0 if items else 1.0
        total = sum(self._weight(v) for v in items)
        if cfg.max_penalty is not None:
            total = min(total, cfg.max_penalty)
        return 0.0 - total

    def _weight(self, violation: Any) -> float:
        cfg = self.cfg
        if not isinstance(violation, dict):
            return cfg.default_weight
        sev = violation.get(cfg.severity_field)
        if sev is None:
            return cfg.default_weight
        if isinstance(sev, (int, float)) and not isinstance(sev, bool):
            if not (math.isfinite(sev) and sev >= 0):
                raise ValueError(f"severity {sev} is not a finite number ≥ 0")
            return float(sev)
        if isinstance(sev, str) and sev in cfg.weights:
            return cfg.weights[sev]
        raise ValueError(
            f"unknown severity {sev!r}; known: {sorted(cfg.weights)} (set 'weights') or a number"
        )


def _violations(raw: Any, severity_field: str) -> list[Any]:
    if raw is None or raw is False:
        return []
    if raw is True:
        return [True]
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict):  # deny[msg] := severity
        return [v if isinstance(v, dict) else {severity_field: v} for v in raw.values()]
    raise ValueError(f"expected a set, array or object of violations, got {_kind_of(raw)}")


def _kind_of(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "a collection", str: "a string"}
    return names.get(type(value)) or f"{value!r:.80}"


class Rego(_PolicyWorkers, RewardSource):
    """Rego policies (OPA's language, run by regorus): each rule maps to an objective."""

    type = "rego"
    Config = RegoConfig
    version = "1"
    _name = "rego"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        require("regorus", "policy", "the rego source")
        base = base_dir.get()
        files = _policy_files(c.policies, base)
        self._policies: list[tuple[str, str]] = []
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"rego: cannot read policy {str(f)!r}: {exc}") from None
            self._policies.append((_display(f, base), text))
        self._data: list[Any] = [c.data] if c.data else []
        self._files = list(files)
        for entry in c.data_files:
            p = Path(entry)
            if not p.is_absolute() and base is not None:
                p = base / p
            self._files.append(p)
            try:
                self._data.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise SourceError(f"rego: data file {str(p)!r}: {exc}") from None
        package = c.package
        if package is not None and not package.startswith("data."):
            package = f"data.{package}"
        self._rules = [_RegoRule(r, package) for r in c.rules]
        self._pool = None
        # syntax, forbidden builtins and rule paths, checked in a worker that stays up for
        # scoring: a policy that crashes regorus while loading is a clear error, not a segfault
        self._check([r.path for r in self._rules])

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(r.objective or r.rule.rsplit(".", 1)[-1] for r in config.rules)

    def _init(self) -> dict[str, Any]:
        return {
            "kind": "rego",
            "policies": self._policies,
            "data": self._data,
            "v0": self.config.rego_v0,
            "collector": _collector([r.path for r in self._rules]),
            "result": _RESULT,
        }

    def _row(self, answer: dict[str, Any]) -> Row:
        if "values" not in answer:  # input_error, eval_error: the engine could not judge
            if "panic" in answer:
                return Fail(answer["panic"])
            return Abstain(answer.get("input_error") or answer.get("eval_error") or str(answer))
        row: list[float | None] = []
        problems = []
        for rule, raw in zip(self._rules, answer["values"]):
            try:
                row.append(rule.value(None if raw == _UNDEFINED else raw))
            except (ValueError, TypeError) as exc:
                problems.append(f"{rule.path}: {exc}")
        return Abstain("rego: " + "; ".join(problems)) if problems else row

    def score(self, samples: list[Sample]) -> Scores:
        return self._score(samples, self._row)

    def cache_files(self) -> Sequence[Path]:
        """The policy and data files read at construction (part of the cache key)."""
        return self._files


def _display(path: Path, base: Path | None) -> str:
    """The name a policy file is reported under: relative to the spec's folder if inside."""
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


# -- cel -----------------------------------------------------------------------------------


class CelConfig(_PolicyLimits):
    expressions: dict[str, str] = Field(
        min_length=1,
        description="objective → CEL expression over prompt, messages, completion, metadata, "
        "reference; a bool gives 1/0, a number itself",
    )


class Cel(_PolicyWorkers, RewardSource):
    """Inline policies as CEL expressions, e.g. ``size(completion) < 2000``."""

    type = "cel"
    Config = CelConfig
    _name = "cel"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        require("cel", "policy", "the cel source")
        self._pool = None
        self._check([])  # compiled in a worker: a parser that panics or crashes is an error here

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.expressions)

    def _init(self) -> dict[str, Any]:
        return {"kind": "cel", "expressions": self.config.expressions}

    def _row(self, answer: dict[str, Any]) -> Row:
        row: list[float | None] = []
        problems, panics = [], []
        for name, (status, value) in zip(self.config.expressions, answer["results"]):
            if status == "panic":
                panics.append(value)
            elif status == "error":
                problems.append(value)
            elif isinstance(value, (bool, int, float)) and math.isfinite(value):
                row.append(float(value))
            else:
                shown = value["other"] if isinstance(value, dict) else repr(value)
                problems.append(f"{name}: must give a bool or a finite number, got {shown}")
        if panics:  # the input broke the engine: never better than failing
            return Fail("cel: " + "; ".join(panics))
        return Abstain("cel: " + "; ".join(problems)) if problems else row

    def score(self, samples: list[Sample]) -> Scores:
        return self._score(samples, self._row)


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Rego)
    registry.add(Cel)
