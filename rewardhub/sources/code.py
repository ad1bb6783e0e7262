"""The ``code-exec`` source: run the completion's code against tests, inside sandboxes.

By default (``isolation: sandbox``) the solution runs in a sandbox of its own and never sees a
test or an expected output: I/O tests are compared here, on the host; test programs run in a
second sandbox that forwards each call to the solution as data (see ``_code_runner.py`` and
``_code_driver.py``; values cross as ``_code_wire.py`` encodes them).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.sandbox import Limits, RunResult, Sandbox, probe
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores, current_deadline
from rewardhub.sources import _code_wire as wire
from rewardhub.sources._code_io import IOTests, call_matches, parse_io, stdout_matches
from rewardhub.sources._code_trusted import HARNESS
from rewardhub.types import Sample


class CodeExecConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extract: Literal["auto", "fenced", "whole"] = Field(
        "auto",
        description="auto: the fenced code block when there is one, else the whole completion; "
        "fenced: only a fenced block (none: score 0); whole: the completion as it is",
    )
    block: Literal["last", "first", "all"] = Field(
        "last", description="which fenced block(s) to run when there are several (all: joined)"
    )
    fence_languages: list[str] = Field(
        default_factory=lambda: ["python", "py", "python3", ""],
        description="info strings of fenced blocks that count as code ('' = no language)",
    )
    prepend_prompt: Literal["auto", "always", "never"] = Field(
        "auto",
        description="put the prompt before the code; auto: for HumanEval-style references "
        "when the code does not define the entry point itself",
    )
    preamble: str = Field(
        "",
        description="code put before every solution, for datasets that assume imports were "
        "prepended (LiveCodeBench's 'from typing import *', 'import collections', ...); "
        "empty by default: the solution runs as written",
    )
    timeout_s: float = Field(
        10.0,
        gt=0,
        description="wall-clock seconds for the solution and for each test (a sample gets "
        "timeout_s × (tests + 1) + 5 s in all)",
    )
    cpu_s: int = Field(10, gt=0, description="CPU seconds per process")
    memory_mb: int = Field(1024, ge=64, description="address space per process")
    processes: int = Field(64, ge=4, description="processes and threads in the sandbox")
    file_size_mb: int = Field(16, ge=1, description="largest file the code may write")
    output_bytes: int = Field(64 * 1024, ge=1024, description="stdout/stderr kept per stream")
    max_code_bytes: int = Field(1 << 20, ge=1024, description="longer code is not run and scores 0")
    concurrency: int | None = Field(
        None, ge=1, description="samples run in parallel (default: the number of CPUs)"
    )
    python: str | None = Field(
        None, description="interpreter that runs the code (default: this one, or /usr/bin/python3)"
    )
    allow_unsandboxed: bool = Field(
        False,
        description="run without bubblewrap when it is missing (only for code you trust)",
    )
    runs: bool = Field(False, description="add the objective 'runs': the code ran without error")
    isolation: Literal["sandbox", "trusted"] = Field(
        "sandbox",
        description="sandbox: the solution runs apart from the tests and can influence its "
        "verdict only through what it returns or prints; trusted: one process runs both "
        "(faster, but the code can fake its verdict: only for code you trust)",
    )


_FENCE = re.compile(
    r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.S | re.M
)


def extract_code(text: str, config: CodeExecConfig) -> str | None:
    """The code to run from a completion (None: no code found)."""
    if config.extract != "whole":
        langs = {lang.lower() for lang in config.fence_languages}
        blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in langs]
        if blocks:
            if config.block == "all":
                return "\n\n".join(blocks)
            return blocks[-1] if config.block == "last" else blocks[0]
        if config.extract == "fenced":
            return None
    return text if text.strip() else None


@dataclass(frozen=True)
class _Tests:
    programs: list[str]
    entry_point: str | None = None


def with_prompt_helpers(tests: _Tests, prompt: str) -> _Tests:
    """HumanEval-style tests (an ``entry_point``) with the prompt's code run before each test,
    in the tests' own namespace: helpers the prompt defines (``poly``, ``encode_cyclic``) come
    from the prompt, never from the solution's process, which could redefine them. The entry
    point's stub is dropped, so the test still calls the solution's. A prompt that is not
    Python (a chat template) adds nothing."""
    if tests.entry_point is None or not prompt.strip():
        return tests
    try:
        compile(prompt, "prompt.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return tests
    head = f"{prompt}\n\nglobals().pop({tests.entry_point!r}, None)\n\n"
    return replace(tests, programs=[head + p for p in tests.programs])


def parse_reference(ref: Any) -> _Tests | IOTests | str:
    """Tests from ``Sample.reference``, or why they are malformed (a test program that is
    not valid Python is malformed: the completion is not to blame)."""
    tests = _parse_tests(ref)
    if isinstance(tests, _Tests):
        for i, program in enumerate(tests.programs):
            try:
                compile(program, f"test_{i}.py", "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                return f"malformed reference: test {i} is not valid Python ({exc})"
    return tests


def _parse_tests(ref: Any) -> _Tests | IOTests | str:
    if isinstance(ref, str):
        return _Tests([ref]) if ref.strip() else "malformed reference: empty test program"
    if isinstance(ref, Mapping) and ("inputs" in ref or "outputs" in ref):
        return parse_io(ref)
    if isinstance(ref, Mapping):
        test, entry = ref.get("test"), ref.get("entry_point")
        if not isinstance(test, str) or not test.strip():
            return "malformed reference: a dict needs a non-empty string 'test'"
        if entry is None:
            return _Tests([test])
        if not isinstance(entry, str) or not entry.isidentifier():
            return "malformed reference: 'entry_point' must be a function name"
        return _Tests([f"{test}\n\ncheck({entry})\n"], entry)
    if isinstance(ref, (list, tuple)):
        if not ref:
            return "malformed reference: empty list of tests"
        if not all(isinstance(t, str) and t.strip() for t in ref):
            return "malformed reference: a list of tests must hold non-empty strings"
        return _Tests(list(ref))
    return (
        "malformed reference: expected a test program (str), a list of tests, "
        "{'test': ..., 'entry_point': ...} or {'inputs': [...], 'outputs': [...]}, "
        f"got {type(ref).__name__}"
    )


def _shipped(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


_WIRE, _SITE, _DRIVER, _RUNNER = (
    _shipped(f) for f in ("_code_wire.py", "_code_site.py", "_code_driver.py", "_code_runner.py")
)
#: how the driver and the runner start (-S: see _code_site.py)
_START = ("-S", "-s", "-B", "main.py")


class CodeExec(RewardSource):
    """Runs the completion's code with the reference's tests in bubblewrap sandboxes."""

    type = "code-exec"
    Config = CodeExecConfig
    version = "2"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        self._limits = Limits(
            wall_s=c.timeout_s,
            cpu_s=c.cpu_s,
            memory_mb=c.memory_mb,
            processes=c.processes,
            file_size_mb=c.file_size_mb,
            output_bytes=c.output_bytes,
        )
        # raises SandboxUnavailable (a clear SourceError) without bwrap unless allowed
        self._sandbox = Sandbox(
            self._limits, python=c.python, allow_unsandboxed=c.allow_unsandboxed
        )
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return ("tests_passed", "runs") if config.runs else ("tests_passed",)

    def score(self, samples: list[Sample]) -> Scores:
        if self._sandbox.sandboxed:
            broken = probe(self._sandbox)
            if broken:
                return [Abstain(broken) for _ in samples]
        one = functools.partial(self._score_one, deadline=current_deadline())
        if len(samples) == 1:
            return [one(samples[0])]
        return list(self._executor().map(one, samples))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        return state

    # -- internals ---------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            n = self.config.concurrency or os.cpu_count() or 1
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="rewardhub-code-exec")
        return self._pool

    def _score_one(self, sample: Sample, deadline: float | None = None) -> Row:
        if sample.reference is None:
            return Abstain("no reference: code-exec needs tests in Sample.reference")
        tests = parse_reference(sample.reference)
        if isinstance(tests, str):
            return Abstain(tests)
        code = extract_code(sample.completion, self.config)
        if code is None:
            return Fail("no code in the completion")
        if isinstance(tests, _Tests) and self._needs_prompt(code, tests):
            code = f"{sample.prompt_text}\n{code}"
        if self.config.preamble:
            code = f"{self.config.preamble}\n{code}"
        data = code.encode("utf-8", "surrogateescape")
        if len(data) > self.config.max_code_bytes:
            return Fail(f"code longer than max_code_bytes ({self.config.max_code_bytes})")
        n = len(tests.inputs) if isinstance(tests, IOTests) else len(tests.programs)
        budget = _Budget.of(self.config.timeout_s, n, deadline)
        if budget is None:
            return Abstain("the batch deadline passed before this sample ran")
        limits = replace(self._limits, wall_s=budget.wall_s)
        if isinstance(tests, IOTests):
            return self._io(data, tests, limits, budget)
        if self.config.isolation == "trusted":
            return self._trusted(data, tests, limits, budget)
        return self._isolated(data, with_prompt_helpers(tests, sample.prompt_text), limits, budget)

    def _row(self, passed: float, ran: bool) -> list[float]:
        return [passed, 1.0 if ran else 0.0] if self.config.runs else [passed]

    def _needs_prompt(self, code: str, tests: _Tests) -> bool:
        mode: str = self.config.prepend_prompt
        if mode != "auto":
            return mode == "always"
        if tests.entry_point is None:
            return False
        return (
            re.search(rf"^\s*(async\s+)?def\s+{re.escape(tests.entry_point)}\s*\(", code, re.M)
            is None
        )

    def _io(self, code: bytes, tests: IOTests, limits: Limits, budget: _Budget) -> Row:
        """I/O tests: the solution's sandbox runs each input; outputs are compared here."""
        spec: dict[str, Any] = {
            "timeout_s": budget.test_s,
            "out_cap": self.config.output_bytes,
        }
        if tests.fn_name is None:
            spec.update(mode="stdio", inputs=tests.inputs)
        else:
            spec.update(
                mode="call", fn_name=tests.fn_name, inputs=[wire.encode(x) for x in tests.inputs]
            )
        res = self._driver(code, spec, limits)
        lines, load = _report_lines(res.report)
        bad = _outcome(res, load)
        if bad is not None:
            return bad
        passed = 0
        for i, expected in enumerate(tests.outputs):
            got = lines.get(i)
            if got is None or got.get("err") is not None:
                continue
            if tests.fn_name is None:
                passed += isinstance(got.get("out"), str) and stdout_matches(got["out"], expected)
            else:
                try:
                    value = wire.loads(str(got.get("r")))
                except wire.WireError:
                    continue
                passed += call_matches(value, expected)
        return self._row(passed / len(tests.outputs), True)

    def _isolated(self, code: bytes, tests: _Tests, limits: Limits, budget: _Budget) -> Row:
        """Test programs: run in a sandbox of their own, calling into the solution's."""
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        abort_r, abort_w = os.pipe()
        stop_r, stop_w = os.pipe()
        names = [f"test_{i}.py" for i in range(len(tests.programs))]
        runner_files: dict[str, str | bytes] = {
            "_code_wire.py": _WIRE,
            "_code_site.py": _SITE,
            "spec.json": json.dumps({"tests": names, "timeout_s": budget.test_s,
                                     "req_fd": req_w, "resp_fd": resp_r, "abort_fd": abort_w}),
            **dict(zip(names, tests.programs)),
        }  # fmt: skip
        spec = {"mode": "serve", "req_fd": req_r, "resp_fd": resp_w, "abort_fd": abort_r}
        solution: list[RunResult] = []

        def run_solution() -> None:
            fds = (req_r, resp_w, abort_r)
            solution.append(self._driver(code, spec, limits, pass_fds=fds, stop_fd=stop_r))

        thread = threading.Thread(target=run_solution, name="rewardhub-code-exec-solution")
        try:
            thread.start()
            runner = self._sandbox.run(
                [self._sandbox.python, *_START], {**runner_files, "main.py": _RUNNER},
                report=True, limits=limits, pass_fds=(req_w, resp_r, abort_w),
            )  # fmt: skip
        finally:
            os.write(stop_w, b"x")  # the tests are done: end the solution's sandbox now
            started = thread.ident is not None
            if started:
                thread.join()
            for fd in (stop_r, stop_w) if started else (stop_r, stop_w, req_r, resp_w, abort_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if runner.error is not None:
            return Abstain(runner.error)  # the tests' sandbox could not start
        marks = runner.report.split("\n")
        if runner.killed_by_limit is not None or runner.exit_code != 0:
            # the runner waits only on the solution: whatever stopped it, the solution caused
            return _outcome(replace(runner, error=None), None) or Fail(
                f"the tests could not finish ({_why(runner)})"
            )
        res = solution[0]
        _, load = _report_lines(res.report)
        if res.killed_by_limit == "stopped" and load is None:
            # the tests ended before the solution had loaded: it ran past the test's time
            load = {"load": "timeout", "detail": "the solution did not load within timeout_s"}
        bad = _outcome(res, load)
        if bad is not None:
            return bad
        broken = next((m for m in marks if m.startswith("bad ")), None)
        if broken is not None:  # valid here, not under the sandbox's (older) Python
            return Abstain(f"malformed reference: {broken[4:]}")
        passed = sum(1 for i in range(len(names)) if f"pass {i}" in marks)
        return self._row(passed / len(names), True)

    def _trusted(self, code: bytes, tests: _Tests, limits: Limits, budget: _Budget) -> Row:
        """``isolation: trusted``: the old single-process harness (see ``_code_trusted.py``)."""
        names = [f"test_{i}.py" for i in range(len(tests.programs))]
        files: dict[str, str | bytes] = {
            "solution.py": code,
            "spec.json": json.dumps({"tests": names, "test_timeout_s": budget.test_s}),
            **dict(zip(names, tests.programs)),
        }
        nonce = secrets.token_hex(16)
        res = self._sandbox.run_python(
            HARNESS, files=files, stdin=f"{nonce}\n".encode(), report=True, limits=limits
        )
        marks = {
            line[len(nonce) + 1 :]
            for line in res.report.splitlines()
            if line.startswith(nonce + " ")
        }
        load = None if "ran" in marks else {"load": "error", "detail": "the solution failed"}
        bad = _outcome(res, load)
        if bad is not None:
            return bad
        passed = sum(1 for i in range(len(names)) if f"pass {i}" in marks)
        return self._row(passed / len(names), True)

    def _driver(self, code: bytes, spec: dict[str, Any], limits: Limits, **kw: Any) -> RunResult:
        """Run the solution's side (``_code_driver.py``) with ``code`` as ``solution.py``."""
        files: dict[str, str | bytes] = {
            "main.py": _DRIVER, "_code_wire.py": _WIRE, "_code_site.py": _SITE,
            "solution.py": code, "spec.json": json.dumps(spec),
        }  # fmt: skip
        return self._sandbox.run(
            [self._sandbox.python, *_START], files, report=True, limits=limits, **kw
        )


def _report_lines(report: str) -> tuple[dict[int, dict[str, Any]], dict[str, Any] | None]:
    """The solution driver's report: results by test index (first wins), and its load error.
    Written by untrusted code: anything that is not a well-formed line is skipped."""
    results: dict[int, dict[str, Any]] = {}
    load: dict[str, Any] | None = None
    for line in report.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        if load is None and isinstance(msg.get("load"), str):
            load = msg
        i = msg.get("i")
        if type(i) is int and i not in results:
            results[i] = msg
    return results, load


def _why(res: RunResult) -> str:
    if res.killed_by_limit:
        return f"{res.killed_by_limit} limit"
    return f"exit status {res.exit_code}"


@dataclass(frozen=True)
class _Budget:
    """A sample's time: ``test_s`` per test (and to load), ``wall_s`` in all (plus sandbox
    start-up). Its own (``timeout_s``), or, when the batch deadline (spec ``timeout_s``) comes
    first, what is left of it, shared the same way: a completion that runs out of time has
    caused a failed check whichever deadline stopped it."""

    wall_s: float
    test_s: float

    @classmethod
    def of(cls, timeout_s: float, tests: int, deadline: float | None) -> _Budget | None:
        own = timeout_s * (tests + 1) + _STARTUP_S
        left = own if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return None
        if left >= own:
            return cls(own, timeout_s)
        return cls(left, max(min(timeout_s, left - _STARTUP_S), _MIN_TEST_S))


#: seconds a sample's budget allows for starting its sandboxes
_STARTUP_S = 5.0
#: the least time a test gets when the batch deadline is near
_MIN_TEST_S = 0.5


def _outcome(res: RunResult, load: dict[str, Any] | None) -> Row | None:
    """The row when the solution's sandbox did not get to run the tests, else None. A
    time-out (the CPU limit, or the wall clock of its budget, whichever deadline set it) is
    the completion's doing: a failed check."""
    if res.error is not None:
        return Abstain(res.error)  # the sandbox could not start: nothing is known
    if res.killed_by_limit in ("wall", "cpu"):
        return Fail("timed out")
    if res.killed_by_limit == "output":
        return Fail("output limit")
    if load is not None and load.get("load") != "ok":
        kind = {"syntax": "syntax error", "timeout": "timed out"}.get(str(load["load"]), "crashed")
        return Fail(f"{kind}: {str(load.get('detail', ''))[:200]}")
    return None


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(CodeExec)
