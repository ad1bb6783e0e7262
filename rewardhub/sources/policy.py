"""Policy-as-code sources: ``rego`` (OPA's language, run by regorus) and ``cel``.

Both see the same input document per sample: ``prompt`` (the prompt as text), ``messages``
(the chat messages, or an empty list), ``completion``, ``metadata`` and ``reference``.
Lone surrogates (text that was not valid UTF-8) are replaced by U+FFFD before evaluation.
An evaluation error abstains on the sample's whole row (NaN) with the error as the reason;
a policy that loads badly is a :class:`SourceError` naming the file, line and message.
"""

from __future__ import annotations

import json
import math
import queue
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardhub._optional import require
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, RewardSource, Row, Scores
from rewardhub.spec import base_dir
from rewardhub.types import Sample

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


def _too_long(sample: Sample, max_chars: int | None) -> Abstain | None:
    if max_chars is not None and len(sample.completion) > max_chars:
        return Abstain(
            f"completion has {len(sample.completion)} characters, over max_chars={max_chars}; "
            "raise max_chars to evaluate it"
        )
    return None


# -- rego ----------------------------------------------------------------------------------

#: builtins a reward policy may not call: I/O, and values that change from run to run
#: (rewards must be reproducible and cacheable)
FORBIDDEN_BUILTINS = {
    "http.send": "policies cannot do I/O",
    "opa.runtime": "policies cannot read the environment",
    "time.now_ns": "rewards must be reproducible (no clock)",
    "rand.intn": "rewards must be reproducible (no randomness)",
    "uuid.rfc4122": "rewards must be reproducible (no random ids)",
}

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


class RegoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
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
    max_chars: int | None = Field(
        1_000_000, ge=1, description="longer completions abstain instead of being evaluated"
    )

    @model_validator(mode="after")
    def _unique_objectives(self) -> RegoConfig:
        names = [r.objective or r.rule.rsplit(".", 1)[-1] for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two rules map to the same objective {dupes}; set 'objective'")
        return self


def _rego_message(exc: BaseException) -> str:
    """regorus's error text without the Rust backtrace: 'file:line:col: message'."""
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    where = re.search(r"-->\s*(\S+?):(\d+):(\d+)", text)
    msg = re.search(r"^error:\s*(.*)$", text, re.MULTILINE)
    if where and msg:
        return f"{where.group(1)}:{where.group(2)}:{where.group(3)}: {msg.group(1).strip()}"
    return " ".join(text.split()) or type(exc).__name__


def _ref_name(node: Any) -> str | None:
    """'http.send' from the AST of a call's function reference."""
    if not isinstance(node, dict):
        return None
    if "Var" in node:
        value = node["Var"].get("value")
        return value if isinstance(value, str) else None
    if "RefDot" in node:
        inner = _ref_name(node["RefDot"].get("refr"))
        field = node["RefDot"].get("field")
        if inner is not None and isinstance(field, list) and field and isinstance(field[-1], str):
            return f"{inner}.{field[-1]}"
    return None


def _calls(node: Any, found: list[tuple[str, dict[str, Any]]]) -> None:
    if isinstance(node, dict):
        call = node.get("Call")
        if isinstance(call, dict):
            name = _ref_name(call.get("fcn"))
            if name is not None:
                found.append((name, call.get("span") or {}))
        for v in node.values():
            _calls(v, found)
    elif isinstance(node, list):
        for v in node:
            _calls(v, found)


def _check_builtins(engine: Any) -> None:
    try:
        modules = json.loads(engine.get_ast_as_json())
    except Exception:  # no AST export in this regorus version: nothing to check here
        return
    for module in modules:
        calls: list[tuple[str, dict[str, Any]]] = []
        _calls(module.get("ast"), calls)
        for name, span in calls:
            if name in FORBIDDEN_BUILTINS:
                file = (module.get("source") or {}).get("file", "?")
                raise SourceError(
                    f"rego: {file}:{span.get('line', '?')}:{span.get('col', '?')}: "
                    f"{name} is not allowed: {FORBIDDEN_BUILTINS[name]}"
                )


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


def _detached(exc: BaseException) -> BaseException:
    """``exc`` without its traceback and chained exceptions.

    Their frames hold the engine; an exception that carried them to another thread would make
    that thread drop the engine, which regorus refuses ("Engine is unsendable").
    """
    exc.__context__ = None
    exc.__cause__ = None
    return exc.with_traceback(None)


class _Worker:
    """One thread that owns a regorus engine (engines must stay on the thread that made them)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        thread = threading.Thread(
            target=_Worker._run, args=(build, self._queue), name="rewardhub-rego", daemon=True
        )
        thread.start()

    @staticmethod
    def _run(
        build: Callable[[], Any],
        jobs: queue.SimpleQueue[tuple[Callable[[Any], Any], Future[Any]] | None],
    ) -> None:
        engine = None
        while (job := jobs.get()) is not None:
            fn, fut = job
            if fut.set_running_or_notify_cancel():
                try:
                    if engine is None:
                        engine = build()
                    fut.set_result(fn(engine))
                except BaseException as exc:
                    fut.set_exception(_detached(exc))
            del job, fn, fut
        del engine  # dropped here, on the thread that made it

    def call(self, fn: Callable[[Any], Any]) -> Any:
        fut: Future[Any] = Future()
        self._queue.put((fn, fut))
        return fut.result()

    def stop(self) -> None:
        self._queue.put(None)


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


class Rego(RewardSource):
    """Rego policies (OPA's language, run by regorus): each rule maps to an objective."""

    type = "rego"
    Config = RegoConfig
    version = "1"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        self._regorus = require("regorus", "policy", "the rego source")
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
        self._validate()
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(r.objective or r.rule.rsplit(".", 1)[-1] for r in config.rules)

    # -- engines -----------------------------------------------------------------------------

    def _builder(self) -> Callable[[], Any]:
        """A function that builds a loaded engine (it holds no reference to the source)."""
        regorus, policies, data, v0 = self._regorus, self._policies, self._data, self.config.rego_v0
        collector = _collector([r.path for r in self._rules])

        def build() -> Any:
            engine = regorus.Engine()
            if v0:
                engine.set_rego_v0(True)
            for name, text in policies:
                try:
                    engine.add_policy(name, text)
                except RuntimeError as exc:
                    raise SourceError(f"rego: syntax error in {_rego_message(exc)}") from None
            engine.add_policy(f"{_EVAL_PACKAGE}.rego", collector)
            for doc in data:
                try:
                    engine.add_data(doc)
                except RuntimeError as exc:
                    raise SourceError(f"rego: bad data: {_rego_message(exc)}") from None
            return engine

        return build

    def _validate(self) -> None:
        """Load the policies once, on a short-lived worker thread (engines must never meet
        another thread): syntax errors, forbidden builtins, unknown rules."""
        worker = _Worker(self._builder())
        try:
            worker.call(self._check_rules)
        finally:
            worker.stop()

    def _check_rules(self, engine: Any) -> None:
        _check_builtins(engine)
        engine.set_input({"prompt": "", "messages": [], "completion": "", "metadata": {}})
        packages = engine.get_packages()
        for rule in self._rules:
            try:
                engine.eval_rule(rule.path)
            except RuntimeError as exc:
                if "not a valid rule path" in str(exc):
                    raise SourceError(
                        f"rego: rule {rule.path} is not defined by the policies "
                        f"(packages: {', '.join(packages) or 'none'})"
                    ) from None
            except Exception:  # an error on the empty input is an evaluation matter
                pass

    def _get_worker(self) -> _Worker:
        with self._lock:
            if self._worker is None:
                worker = _Worker(self._builder())
                weakref.finalize(self, worker.stop)
                self._worker = worker
            return self._worker

    # -- scoring -----------------------------------------------------------------------------

    def _evaluate(self, engine: Any, samples: list[Sample]) -> list[Row]:
        rules = self._rules
        max_chars = self.config.max_chars
        out: list[Row] = []
        for s in samples:
            skip = _too_long(s, max_chars)
            if skip is not None:
                out.append(skip)
                continue
            try:
                engine.set_input(input_document(s))
            except Exception as exc:
                out.append(Abstain(f"input not usable by rego: {_rego_message(exc)}"))
                continue
            try:  # one evaluation of every rule: rules they share are computed once
                values = json.loads(engine.eval_rule_as_json(_RESULT))
            except RuntimeError as exc:
                out.append(Abstain(f"rego: evaluation error at {_rego_message(exc)}"))
                continue
            row: list[float | None] = []
            problems = []
            for rule, raw in zip(rules, values):
                try:
                    row.append(rule.value(None if raw == _UNDEFINED else raw))
                except (ValueError, TypeError) as exc:
                    problems.append(f"{rule.path}: {exc}")
            out.append(Abstain("rego: " + "; ".join(problems)) if problems else row)
        return out

    def score(self, samples: list[Sample]) -> Scores:
        if not samples:
            return []
        return self._get_worker().call(lambda engine: self._evaluate(engine, samples))  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    def cache_files(self) -> Sequence[Path]:
        """The policy and data files read at construction (part of the cache key)."""
        return self._files

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_worker", None)
        state.pop("_lock", None)
        state.pop("_regorus", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._regorus = require("regorus", "policy", "the rego source")
        self._worker = None
        self._lock = threading.Lock()


def _display(path: Path, base: Path | None) -> str:
    """The name a policy file is reported under: relative to the spec's folder if inside."""
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


# -- cel -----------------------------------------------------------------------------------


class CelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expressions: dict[str, str] = Field(
        min_length=1,
        description="objective → CEL expression over prompt, messages, completion, metadata, "
        "reference; a bool gives 1/0, a number itself",
    )
    max_chars: int | None = Field(
        1_000_000, ge=1, description="longer completions abstain instead of being evaluated"
    )


class Cel(RewardSource):
    """Inline policies as CEL expressions, e.g. ``size(completion) < 2000``."""

    type = "cel"
    Config = CelConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._programs = self._compile()

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.expressions)

    def _compile(self) -> list[tuple[str, Any]]:
        cel = require("cel", "policy", "the cel source")
        out = []
        for name, expr in self.config.expressions.items():
            try:
                out.append((name, cel.compile(expr)))
            except Exception as exc:
                msg = " ".join(str(exc).split())
                raise SourceError(
                    f"cel: objective {name!r}: cannot compile {expr!r}: {msg}"
                ) from None
        return out

    def _row(self, s: Sample) -> Row:
        skip = _too_long(s, self.config.max_chars)
        if skip is not None:
            return skip
        ctx = input_document(s)
        row: list[float | None] = []
        problems = []
        for name, program in self._programs:
            try:
                value = program.execute(ctx)
            except KeyError as exc:
                problems.append(f"{name}: no such key {exc}")
                continue
            except Exception as exc:
                problems.append(f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())}")
                continue
            if isinstance(value, (bool, int, float)) and math.isfinite(value):
                row.append(float(value))
            else:
                problems.append(f"{name}: must give a bool or a finite number, got {value!r:.80}")
        return Abstain("cel: " + "; ".join(problems)) if problems else row

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s) for s in samples]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_programs"]  # compiled programs do not pickle: recompiled on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._programs = self._compile()


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Rego)
    registry.add(Cel)
