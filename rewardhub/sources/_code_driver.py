"""The solution's side of ``code-exec``: runs inside the solution's sandbox as ``main.py``.

Nothing here is trusted, and nothing here needs to be: this sandbox never sees an expected
output or a test, only inputs and calls. Whatever it sends back is data that the host (I/O
tests) or the test runner's sandbox (test programs) decodes into builtin values and judges.

Modes (``spec.json``):

- ``stdio``: for each input, a child runs ``solution.py`` as ``__main__`` with the input on
  stdin; its stdout, exit status or time-out goes to the report descriptor, one JSON line each.
- ``call``: for each input a child runs ``solution.py`` and calls ``fn_name`` (a top-level
  function, else a method of ``Solution()``) with the input's arguments; the encoded result
  comes back to this process on a pipe of its own, which reports it.
- ``serve``: ``solution.py`` runs once; for each test the runner starts, a child answers the
  runner's requests (look up a name, call, get an attribute, ``len``, index) with data.

Load errors are reported as ``{"load": "syntax" | "error" | "no function", "detail": ...}``.

Reports cannot be forged (``stdio`` and ``call``): the solution's code runs only in children
that close the report descriptor first, and this process makes itself non-dumpable, so that
they cannot reopen it through ``/proc``. (In ``serve`` mode the code runs here, but the
report carries only the load status; the verdicts are the runner's.)
Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewardhub.sources import _code_site
    from rewardhub.sources import _code_wire as wire
else:  # in the sandbox, shipped beside this file
    import _code_site
    import _code_wire as wire


def _report_fd() -> int:
    return int(os.environ.pop("REWARDHUB_REPORT_FD"))


def _emit(fd: int, obj: Any) -> None:
    data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the solution may have replaced or closed them
            stream.flush()


def _load(report: int) -> tuple[Any, dict[str, Any]]:
    """Compile and run solution.py once; on failure report why and exit."""
    with open("solution.py", "rb") as f:
        source = f.read()
    try:
        # dont_inherit: the solution is compiled with its own flags, not this file's __future__
        code = compile(source, "solution.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        _emit(report, {"load": "syntax", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        os._exit(0)
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    return code, ns


def _collect(pid: int, fd: int, timeout_s: float, cap: int) -> tuple[bytes, str | None]:
    """Read a child's pipe until EOF, the time-out or ``cap`` bytes; reap (or kill) it."""
    out, why, deadline = bytearray(), None, time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            why = "timeout"
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        out += chunk
        if len(out) > cap:
            why = "output limit"
            break
    os.close(fd)
    if why is not None:
        for target in (-pid, pid):
            with contextlib.suppress(OSError):
                os.kill(target, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if why is None and status != 0:
        code = (
            os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
        )
        why = f"exit status {code}"
    return bytes(out), why


def _child(setup: Callable[[], None], body: Callable[[], bytes], w: int) -> None:
    """In a forked child: run ``body``, write what it returns to ``w``, exit."""
    try:
        os.setpgid(0, 0)
        setup()
        data = body()
        _flush()
        view = memoryview(data)
        while view:
            view = view[os.write(w, view) :]
        os._exit(0)
    except SystemExit as exc:
        _flush()
        os._exit(0 if exc.code in (None, 0) else 1)
    except BaseException:
        traceback.print_exc()
        _flush()
        os._exit(1)


def run_stdio(spec: dict[str, Any], report: int) -> None:
    code, _ = _load(report)
    for i, text in enumerate(spec["inputs"]):
        stdin = os.memfd_create("stdin")
        os.write(stdin, text.encode("utf-8", "surrogateescape"))
        os.lseek(stdin, 0, os.SEEK_SET)
        r, w = os.pipe()
        _flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(report)

            def setup(stdin: int = stdin, w: int = w) -> None:
                os.dup2(stdin, 0)
                os.dup2(w, 1)
                opts: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape"}
                sys.stdin = os.fdopen(0, "r", closefd=False, **opts)
                sys.stdout = os.fdopen(1, "w", closefd=False, **opts)

            def body() -> bytes:
                exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
                return b""

            _child(setup, body, w)
        os.close(w)
        os.close(stdin)
        out, why = _collect(pid, r, spec["timeout_s"], spec["out_cap"])
        _emit(report, {"i": i, "out": out.decode("utf-8", "replace"), "err": why})


def _function(ns: dict[str, Any], name: str) -> Any:
    fn = ns.get(name)
    if callable(fn):
        return fn
    cls = ns.get("Solution")
    if isinstance(cls, type) and callable(getattr(cls, name, None)):
        return getattr(cls(), name)
    return None


def _call_body(code: Any, spec: dict[str, Any], args: Any) -> bytes:
    """In a forked child: run the solution, call the function; ``L`` + a load error, or
    ``R`` + the encoded result."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(code, ns)
    except BaseException as exc:  # any failure of the solution is its own
        traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}"[:500]
        return b"L" + json.dumps({"load": "error", "detail": detail}).encode()
    fn = _function(ns, spec["fn_name"])
    if fn is None:
        detail = f"no function {spec['fn_name']!r}"
        return b"L" + json.dumps({"load": "no function", "detail": detail}).encode()
    a = wire.decode(args)
    result = fn(*a) if isinstance(a, list) else fn(a)
    return b"R" + wire.dumps(result).encode("utf-8", "surrogateescape")


def _nothing() -> None:
    pass


def _load_error(data: bytes) -> dict[str, str]:
    """The load error a child sent (data from the solution's process: rebuilt, never passed on)."""
    try:
        msg = json.loads(data[1:])
    except ValueError:
        msg = {}
    if not isinstance(msg, dict):
        msg = {}
    kind = "no function" if msg.get("load") == "no function" else "error"
    return {"load": kind, "detail": str(msg.get("detail", ""))[:500]}


def run_call(spec: dict[str, Any], report: int) -> None:
    code, _ = _load(report)
    for i, args in enumerate(spec["inputs"]):
        r, w = os.pipe()
        _flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(report)
            _child(_nothing, functools.partial(_call_body, code, spec, args), w)
        os.close(w)
        out, why = _collect(pid, r, spec["timeout_s"], spec["out_cap"])
        if why is None and out[:1] == b"L":
            _emit(report, _load_error(out))
            return
        result = out[1:] if out[:1] == b"R" else b""
        _emit(report, {"i": i, "r": result.decode("utf-8", "replace"), "err": why})


class _Lines:
    """Lines from a pipe, read without buffering past what was asked for."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, bytearray()

    def next(self) -> bytes | None:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return line


def _serve_test(ns: dict[str, Any], req: _Lines, resp: int) -> None:
    """In a forked child: answer the runner's requests for one test until ``end``."""
    handles: dict[int, Any] = {}

    def handle(obj: Any) -> int:
        handles[id(obj)] = obj
        return id(obj)

    def arg(x: Any) -> Any:  # the runner's handles back into this process's objects
        if isinstance(x, wire.Ref):
            return handles[x.id]
        if type(x) in (list, tuple):
            return type(x)(arg(v) for v in x)
        if type(x) is dict:
            return {arg(k): arg(v) for k, v in x.items()}
        return x

    while True:
        line = req.next()
        if line is None:
            return
        msg = json.loads(line)
        op, n = msg.get("op"), msg.get("n")
        if op == "end":
            return
        try:
            if op == "get":
                if msg["name"] not in ns:
                    raise NameError(f"name {msg['name']!r} is not defined")
                value = ns[msg["name"]]
            elif op == "call":
                args = [arg(a) for a in wire.decode(msg["a"])]
                kwargs = {k: arg(v) for k, v in wire.decode(msg["kw"]).items()}
                value = handles[msg["ref"]](*args, **kwargs)
            elif op == "attr":
                value = getattr(handles[msg["ref"]], msg["name"])
            elif op in _BUILTINS:
                value = _BUILTINS[op](handles[msg["ref"]])
            elif op == "item":
                value = handles[msg["ref"]][arg(wire.decode(msg["key"]))]
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = f'{{"n":{int(n)},"v":{wire.dumps(value, handle)}}}'
        except BaseException as exc:  # the solution's exception goes back as data
            reply = json.dumps({"n": n, "exc": type(exc).__name__, "msg": str(exc)[:1000]})
        _flush()
        _write_line(resp, reply)


#: what a test may apply to a handle; each answer is data
_BUILTINS: dict[str, Callable[[Any], Any]] = {
    "len": len, "iter": list, "bool": bool, "str": str,
}  # fmt: skip


def _write_line(fd: int, text: str) -> None:
    view = memoryview((text + "\n").encode("utf-8", "surrogateescape"))
    while view:
        view = view[os.write(fd, view) :]


def run_serve(spec: dict[str, Any], report: int) -> None:
    code, ns = _load(report)
    req, resp, abort = spec["req_fd"], spec["resp_fd"], spec["abort_fd"]
    loaded = True
    try:
        exec(code, ns)
        _emit(report, {"load": "ok"})
    except BaseException as exc:
        traceback.print_exc()
        _flush()
        _emit(report, {"load": "error", "detail": f"{type(exc).__name__}: {exc}"[:500]})
        loaded = False
    lines = _Lines(req)
    while True:
        line = lines.next()
        if line is None:
            return
        msg = json.loads(line)
        if msg.get("op") != "test":
            continue
        if not loaded:  # every test fails at once
            _write_line(resp, json.dumps({"op": "begin", "k": msg["k"], "dead": True}))
            _write_line(resp, '{"op":"idle"}')
            continue
        while select.select([abort], [], [], 0)[0]:  # a stale abort (its test's child had died)
            os.read(abort, 64)
        _flush()
        pid = os.fork()
        if pid == 0:
            os.close(abort)
            os.setpgid(0, 0)
            _write_line(resp, json.dumps({"op": "begin", "k": msg["k"]}))
            _serve_test(ns, lines, resp)
            _flush()
            os._exit(0)
        _wait_or_abort(pid, abort)
        # the newline ends any line a dead child left; "gone" ends a call it never answered
        _write_line(resp, '\n{"op":"gone"}\n{"op":"idle"}')


def _wait_or_abort(pid: int, abort: int) -> None:
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        if select.select([abort], [], [], 0.005)[0]:
            os.read(abort, 64)
            for target in (-pid, pid):
                with contextlib.suppress(OSError):
                    os.kill(target, signal.SIGKILL)
            os.waitpid(pid, 0)
            return


def _not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: the solution's processes (same uid) cannot open this process's
    descriptors through /proc/<pid>/fd (nor read its memory)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)


def main() -> None:
    _code_site.install()
    _not_dumpable()
    report = _report_fd()
    with open("spec.json") as f:
        spec = json.load(f)
    {"stdio": run_stdio, "call": run_call, "serve": run_serve}[spec["mode"]](spec, report)
    _flush()
    os._exit(0)


if __name__ == "__main__":
    main()
