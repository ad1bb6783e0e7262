"""The ``code-exec`` source: run the completion's code against tests, inside a sandbox."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.sandbox import Limits, RunResult, Sandbox, probe
from rewardhub.source import Abstain, RewardSource, Row, Scores
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
    timeout_s: float = Field(
        10.0,
        gt=0,
        description="wall-clock seconds for the solution and for each test (a sample gets "
        "timeout_s × (tests + 1) + 2 s in all)",
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


# The harness that runs inside the sandbox. It runs the solution, then each test in a forked
# child (so tests are independent and one that hangs is killed after ``test_timeout_s``). A test
# passes when its child says "ok" on a private pipe and exits 0, so code that exits early
# (``exit(0)``, ``os._exit(0)``) fails. Progress goes to the report descriptor tagged with a nonce
# read from stdin, so printing fake results does not count either.
_HARNESS = r"""
import json, os, select, sys, time, traceback
def _main():
    nonce = sys.stdin.readline().strip()
    out = int(os.environ.pop("REWARDHUB_REPORT_FD"))
    def mark(what):
        os.write(out, ("%s %s\n" % (nonce, what)).encode())
    with open("spec.json") as f:
        spec = json.load(f)
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        with open("solution.py", "rb") as f:
            exec(compile(f.read(), "solution.py", "exec"), ns)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    mark("ran")
    for i, name in enumerate(spec["tests"]):
        with open(name, "rb") as f:
            source = f.read()
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(out)
            try:
                exec(compile(source, name, "exec"), ns)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os.write(w, b"ok")
            os._exit(0)
        os.close(w)
        got, deadline = b"", time.monotonic() + spec["test_timeout_s"]
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, 9)
                break
            chunk = os.read(r, 64)
            if not chunk:
                break
            got += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if got == b"ok" and status == 0:
            mark("pass %d" % i)
    mark("done")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
_main()
"""

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


def parse_reference(ref: Any) -> _Tests | str:
    """Tests from ``Sample.reference``, or why they are malformed."""
    if isinstance(ref, str):
        return _Tests([ref]) if ref.strip() else "malformed reference: empty test program"
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
        "malformed reference: expected a test program (str), a list of tests or "
        f"{{'test': ..., 'entry_point': ...}}, got {type(ref).__name__}"
    )


class CodeExec(RewardSource):
    """Runs the completion's code with the reference's tests in a bubblewrap sandbox."""

    type = "code-exec"
    Config = CodeExecConfig
    version = "1"

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
        if len(samples) == 1:
            return [self._score_one(samples[0])]
        return list(self._executor().map(self._score_one, samples))

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

    def _zeros(self) -> list[float]:
        return [0.0] * len(self.output_objectives)

    def _score_one(self, sample: Sample) -> Row:
        if sample.reference is None:
            return Abstain("no reference: code-exec needs tests in Sample.reference")
        tests = parse_reference(sample.reference)
        if isinstance(tests, str):
            return Abstain(tests)
        code = extract_code(sample.completion, self.config)
        if code is None:
            return self._zeros()  # no code: the answer is wrong
        if self._needs_prompt(code, tests):
            code = f"{sample.prompt_text}\n{code}"
        data = code.encode("utf-8", "surrogateescape")
        if len(data) > self.config.max_code_bytes:
            return self._zeros()
        res, marks = self._run(data, tests)
        if res.error is not None:
            return Abstain(res.error)
        passed = sum(1 for i in range(len(tests.programs)) if f"pass {i}" in marks)
        row = [passed / len(tests.programs)]
        if self.config.runs:
            row.append(1.0 if "ran" in marks else 0.0)
        return row

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

    def _run(self, code: bytes, tests: _Tests) -> tuple[RunResult, set[str]]:
        """Run the harness; return the result and the progress marks tagged with the nonce."""
        names = [f"test_{i}.py" for i in range(len(tests.programs))]
        files: dict[str, str | bytes] = {
            "solution.py": code,
            "spec.json": json.dumps({"tests": names, "test_timeout_s": self.config.timeout_s}),
            **dict(zip(names, tests.programs)),
        }
        nonce = secrets.token_hex(16)
        wall = self.config.timeout_s * (len(names) + 1) + 2.0
        res = self._sandbox.run_python(
            _HARNESS,
            files=files,
            stdin=f"{nonce}\n".encode(),
            report=True,
            limits=replace(self._limits, wall_s=wall),
        )
        marks = {
            line[len(nonce) + 1 :]
            for line in res.report.splitlines()
            if line.startswith(nonce + " ")
        }
        return res, marks


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(CodeExec)
