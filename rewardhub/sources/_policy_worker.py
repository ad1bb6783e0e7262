"""The worker process of the ``rego`` and ``cel`` sources (``python -m`` this module).

Policy engines never run in the caller's process: a Rego function that recurses segfaults
regorus, a deeply nested CEL expression makes its Rust parser panic (pyo3's ``PanicException``
is a ``BaseException``), and an evaluation that hangs holds the GIL. Here a crash loses a worker
(:mod:`rewardhub.workers` replaces it) and a hang is killed at its deadline.

The init line is ``{"kind": "rego", "policies": [[name, text]], "data": [...], "v0": bool,
"collector": text, "result": path}`` or ``{"kind": "cel", "expressions": {name: expr}}``.
Requests: ``{"op": "check", "paths": [...]}`` (rego: syntax, forbidden builtins, rule paths;
cel: compilation) and ``{"op": "eval", "input": {...}}``. This module imports only the engine.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rewardhub.workers import Handler, serve

#: builtins a reward policy may not call: I/O, and values that change from run to run
#: (rewards must be reproducible and cacheable)
FORBIDDEN_BUILTINS = {
    "http.send": "policies cannot do I/O",
    "opa.runtime": "policies cannot read the environment",
    "time.now_ns": "rewards must be reproducible (no clock)",
    "rand.intn": "rewards must be reproducible (no randomness)",
    "uuid.rfc4122": "rewards must be reproducible (no random ids)",
}


def rego_message(exc: BaseException) -> str:
    """regorus's error text without the Rust backtrace: 'file:line:col: message'."""
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    where = re.search(r"-->\s*(\S+?):(\d+):(\d+)", text)
    msg = re.search(r"^error:\s*(.*)$", text, re.MULTILINE)
    if where and msg:
        return f"{where.group(1)}:{where.group(2)}:{where.group(3)}: {msg.group(1).strip()}"
    return " ".join(text.split())[:500] or type(exc).__name__


def _panic(exc: BaseException) -> bool:
    """pyo3 turns a Rust panic into ``PanicException``, a BaseException: it is the input's
    doing (a parser or evaluator that gave up on it), never a reason to stop the worker."""
    return not isinstance(exc, (Exception, KeyboardInterrupt, SystemExit, GeneratorExit))


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


def _forbidden_call(engine: Any) -> str | None:
    try:
        modules = json.loads(engine.get_ast_as_json())
    except Exception:  # no AST export in this regorus version: nothing to check here
        return None
    for module in modules:
        calls: list[tuple[str, dict[str, Any]]] = []
        _calls(module.get("ast"), calls)
        for name, span in calls:
            if name in FORBIDDEN_BUILTINS:
                file = (module.get("source") or {}).get("file", "?")
                return (
                    f"rego: {file}:{span.get('line', '?')}:{span.get('col', '?')}: "
                    f"{name} is not allowed: {FORBIDDEN_BUILTINS[name]}"
                )
    return None


class _Rego:
    def __init__(self, init: dict[str, Any]) -> None:
        import regorus

        self.result = init["result"]
        self.error: str | None = None
        engine = regorus.Engine()
        if init["v0"]:
            engine.set_rego_v0(True)
        try:
            for name, text in init["policies"]:
                try:
                    engine.add_policy(name, text)
                except RuntimeError as exc:
                    raise ValueError(f"rego: syntax error in {rego_message(exc)}") from None
            engine.add_policy("rewardhub_eval.rego", init["collector"])
            for doc in init["data"]:
                try:
                    engine.add_data(doc)
                except RuntimeError as exc:
                    raise ValueError(f"rego: bad data: {rego_message(exc)}") from None
        except ValueError as exc:
            self.error = str(exc)
        self.engine = engine

    def check(self, paths: list[str]) -> dict[str, Any]:
        engine = self.engine
        problem = _forbidden_call(engine)
        if problem is not None:
            return {"error": problem}
        engine.set_input({"prompt": "", "messages": [], "completion": "", "metadata": {}})
        packages = engine.get_packages()
        for path in paths:
            try:
                engine.eval_rule(path)
            except RuntimeError as exc:
                if "not a valid rule path" in str(exc):
                    return {
                        "error": f"rego: rule {path} is not defined by the policies "
                        f"(packages: {', '.join(packages) or 'none'})"
                    }
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # an error on the empty input is an evaluation matter
                pass
        return {"ok": True}

    def eval(self, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            self.engine.set_input(doc)
        except Exception as exc:
            return {"input_error": f"input not usable by rego: {rego_message(exc)}"}
        try:  # one evaluation of every rule: rules they share are computed once
            return {"values": json.loads(self.engine.eval_rule_as_json(self.result))}
        except RuntimeError as exc:
            return {"eval_error": f"rego: evaluation error at {rego_message(exc)}"}
        except BaseException as exc:
            if _panic(exc):
                return {"panic": f"rego: the engine panicked on this input: {rego_message(exc)}"}
            raise


def _cel_value(value: Any) -> Any:
    """A CEL result as JSON: numbers and booleans as they are, anything else described."""
    if isinstance(value, (bool, int, float)):
        return value
    return {"other": f"{value!r:.80}"}


class _Cel:
    def __init__(self, init: dict[str, Any]) -> None:
        import cel

        self.error: str | None = None
        self.programs: list[tuple[str, Any]] = []
        for name, expr in init["expressions"].items():
            try:
                self.programs.append((name, cel.compile(expr)))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a panic too: 100k nested parentheses
                msg = " ".join(str(exc).split())[:300]
                what = "the CEL parser panicked on" if _panic(exc) else "cannot compile"
                self.error = f"cel: objective {name!r}: {what} {expr!r:.200}: {msg}"
                return

    def check(self, paths: list[str]) -> dict[str, Any]:
        return {"ok": True}

    def eval(self, ctx: dict[str, Any]) -> dict[str, Any]:
        out: list[list[Any]] = []
        for name, program in self.programs:
            try:
                out.append(["ok", _cel_value(program.execute(ctx))])
            except KeyError as exc:
                out.append(["error", f"{name}: no such key {exc}"])
            except Exception as exc:
                out.append(["error", f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())}"])
            except BaseException as exc:
                if not _panic(exc):
                    raise
                out.append(["panic", f"{name}: the CEL engine panicked on this input: {exc}"])
        return {"results": out}


def _setup(init: dict[str, Any]) -> Handler:
    impl: _Rego | _Cel = _Rego(init) if init["kind"] == "rego" else _Cel(init)

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if impl.error is not None:
            return {"error": impl.error}
        if request["op"] == "check":
            return impl.check(request.get("paths", []))
        return impl.eval(request["input"])

    return handle


if __name__ == "__main__":
    serve(_setup, init=True)
