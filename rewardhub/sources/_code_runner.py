"""The tests' side of ``code-exec``: runs the trusted test programs as ``main.py`` in a sandbox
of their own, apart from the solution's.

Names a test uses that it does not define itself (``candidate``'s target, ``add``, a class)
are looked up in the solution's process; what comes back is data, decoded into builtin values,
or a :class:`Remote` handle whose calls, attributes, ``len``, iteration, truth, ``str`` and
indexing are forwarded, each answer coming back as data.
A handle compares by identity only: the solution's ``__eq__`` never decides a test. Each passed
test is reported as ``pass <i>`` on the report descriptor, which only this process holds.

Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import select
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewardhub.sources import _code_site
    from rewardhub.sources import _code_wire as wire
else:  # in the sandbox, shipped beside this file
    import _code_site
    import _code_wire as wire

MAX_LINE = 64 << 20
STARTUP_S = 3.0
"""seconds the solution's sandbox may take to start, beyond the ``timeout_s`` to load it"""


class CandidateError(Exception):
    """An exception the solution raised whose type is not a builtin one."""


class TestTimeout(BaseException):
    """The test ran past its time."""


class Broken(Exception):
    """The solution's side stopped answering, or answered with something that is not data."""


class Channel:
    def __init__(self, req: int, resp: int) -> None:
        self.req, self.resp, self.buf, self.n = req, resp, bytearray(), 0

    def send(self, msg: dict[str, Any]) -> None:
        view = memoryview((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        while view:
            view = view[os.write(self.req, view) :]

    def line(self, deadline: float | None) -> bytes:
        while b"\n" not in self.buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and (left <= 0 or not select.select([self.resp], [], [], left)[0]):
                raise Broken("no answer")
            chunk = os.read(self.resp, 1 << 16)
            if not chunk:
                raise Broken("the solution's process ended")
            self.buf += chunk
            if len(self.buf) > MAX_LINE:
                raise Broken("answer too long")
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return line

    def wait_for(self, key: str, value: Any, deadline: float | None) -> dict[str, Any]:
        """The next message whose ``key`` is ``value`` (others and garbage are skipped)."""
        while True:
            try:
                msg = json.loads(self.line(deadline))
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get(key) == value:
                return msg
            if key == "n" and isinstance(msg, dict) and msg.get("op") == "gone":
                raise Broken("the solution's process for this test ended")

    def request(self, msg: dict[str, Any]) -> Any:
        self.n += 1
        msg["n"] = self.n
        self.send(msg)
        reply = self.wait_for("n", self.n, None)  # the test's alarm bounds the wait
        if "exc" in reply:
            name, text = str(reply.get("exc")), str(reply.get("msg"))
            cls = getattr(builtins, name, None)
            error: Exception = CandidateError(f"{name}: {text}")
            if isinstance(cls, type) and issubclass(cls, _FLOW):
                # raised by the test's own frames it would end a loop (all(map(...))) as if
                # the iteration were over: a RuntimeError, as PEP 479 does for generators
                error = RuntimeError(f"the solution raised {name}: {text}")
            elif isinstance(cls, type) and issubclass(cls, Exception):
                with contextlib.suppress(TypeError):  # a type that takes other arguments
                    error = cls(text)
            raise error
        if "v" not in reply:
            raise Broken("malformed answer")
        return lift(wire.decode(reply["v"]))


CHANNEL: Channel
#: exceptions that steer control flow when they cross a frame (iteration protocols)
_FLOW = (StopIteration, StopAsyncIteration)


def lift(value: Any) -> Any:
    """Turn the :class:`wire.Ref` handles in a decoded value into :class:`Remote` proxies."""
    if isinstance(value, wire.Ref):
        return Remote(value.id)
    if type(value) is list:
        return [lift(x) for x in value]
    if type(value) is tuple:
        return tuple(lift(x) for x in value)
    if type(value) is dict:
        return {lift(k): lift(v) for k, v in value.items()}
    return value


class Remote(wire.Ref):
    """An object that lives in the solution's process."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return CHANNEL.request(
            {"op": "call", "ref": self.id, "a": wire.encode(list(args)), "kw": wire.encode(kwargs)}
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return CHANNEL.request({"op": "attr", "ref": self.id, "name": name})

    def _apply(self, op: str, want: type) -> Any:
        value = CHANNEL.request({"op": op, "ref": self.id})
        if type(value) is not want:
            raise TypeError(f"{op}() of a remote object did not give a {want.__name__}")
        return value

    def __len__(self) -> int:
        return int(self._apply("len", int))

    def __iter__(self) -> Any:
        return iter(self._apply("iter", list))

    def __bool__(self) -> bool:
        return bool(self._apply("bool", bool))

    def __str__(self) -> str:
        return str(self._apply("str", str))

    def __getitem__(self, key: Any) -> Any:
        return CHANNEL.request({"op": "item", "ref": self.id, "key": wire.encode(key)})


class Namespace(dict):  # type: ignore[type-arg]
    """A test's globals: a name the test does not define comes from the solution's process
    (builtins stay the runner's own)."""

    def __missing__(self, name: str) -> Any:
        if hasattr(builtins, name):
            raise KeyError(name)
        value = CHANNEL.request({"op": "get", "name": name})
        self[name] = value
        return value


def _on_alarm(signum: int, frame: Any) -> None:
    raise TestTimeout()


def main() -> None:
    global CHANNEL
    _code_site.install()
    report = int(os.environ.pop("REWARDHUB_REPORT_FD"))
    with open("spec.json") as f:
        spec = json.load(f)
    CHANNEL = Channel(spec["req_fd"], spec["resp_fd"])
    abort, timeout = spec["abort_fd"], float(spec["timeout_s"])
    signal.signal(signal.SIGALRM, _on_alarm)
    for i, name in enumerate(spec["tests"]):
        try:
            with open(name, "rb") as f:
                code = compile(f.read(), name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            os.write(report, f"bad test {i} does not compile in the sandbox: {exc}\n".encode())
            break
        passed, clean, began = False, True, False
        try:
            CHANNEL.send({"op": "test", "k": i})
            # the first answer waits for the solution's sandbox to start and its code to load
            wait = timeout + (STARTUP_S if i == 0 else 0.0)
            began = not CHANNEL.wait_for("k", i, time.monotonic() + wait).get("dead")
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                if began:
                    exec(code, Namespace({"__name__": "__main__", "__builtins__": builtins}))
                    passed = True
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except (TestTimeout, Broken):
            clean = False
        except BaseException:  # a failed assertion, or anything else
            traceback.print_exc()
        if passed:
            os.write(report, f"pass {i}\n".encode())
        if not clean and not began:
            break  # the solution never answered (still loading, or gone): the rest fail
        try:
            if clean:
                CHANNEL.send({"op": "end"})
            else:
                os.write(abort, b"x")
            CHANNEL.wait_for("op", "idle", time.monotonic() + min(5.0, timeout))
        except (Broken, OSError):
            break  # the solution's side is gone: the remaining tests fail
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
