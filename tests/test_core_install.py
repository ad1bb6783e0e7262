"""The README and docs, followed to the letter in a venv with only the core installed.

The venv is built in a temporary folder from a wheel of this checkout (no system site
packages, no torch, no cvxpy, no pytest), then every command and example the README and
docs show for the core is run there and checked against what the text says; commands and
examples that need an extra must say which one before doing any work. Last, the `server`
extra goes in and the serving page's one-sample request is checked.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

# building a venv and installing into it takes minutes on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _sh(*args: object, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLUMNS"] = "200"
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    if check:
        assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
    return out


def _block(doc: str, after: str) -> str:
    """The first ```python block after the heading or marker ``after`` in ``doc``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    m = re.search(re.escape(after) + r".*?```python\n(.*?)```", text, re.S)
    assert m, f"{doc} has no python block after {after!r}"
    return m.group(1)


def _run_py(py: Path, code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # -I: the installed package only, never the checkout in the working directory
    return _sh(py, "-I", "-c", code, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("core-venv")
    _sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist", ROOT)
    (wheel,) = (tmp / "dist").glob("rewardhub-*.whl")
    _sh(sys.executable, "-m", "venv", tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    _sh(py, "-m", "pip", "install", "--quiet", wheel)
    return py


def test_readme_and_docs_with_only_the_core(core: Path, tmp_path: Path) -> None:
    py, bin_ = core, core.parent
    rewardhub = bin_ / "rewardhub"
    # "pip install rewardhub gives the core ... without torch or cvxpy"
    installed = {
        line.split("==")[0].lower() for line in _sh(py, "-m", "pip", "freeze").stdout.split()
    }
    assert not installed & {"torch", "cvxpy", "pytest", "matplotlib", "fastapi"}

    # README "In Python", with the values its comments give
    readme = _block("README.md", "## In Python")
    checks = (
        "import math\n"
        "assert res.vector.objectives == ('brevity', 'format', 'politeness')\n"
        "assert res.vector.reasons == ({}, {'politeness': 'abstained'})\n"
        "assert res.total[0] == 1.1875 and math.isnan(res.total[1])\n"
        "assert pipe.score(samples, weights={'politeness': 2.0}).total[0] == 1.5875\n"
        "print('readme ok')\n"
    )
    out = _run_py(py, readme + checks)
    assert out.returncode == 0 and "readme ok" in out.stdout, out.stderr

    # README "Writing a plugin": a decorated function registers in one line
    plugin = _block("README.md", "A one-line rule is a decorated function")
    out = _run_py(
        py,
        "import rewardhub as rh\n"
        + plugin
        + "assert pipe.score([{'completion': '\\\\boxed{4}'}]).total.tolist() == [1.0]\n",
    )
    assert out.returncode == 0, out.stderr

    # the test kit without pytest (README, examples/custom_source.py)
    assert _run_py(py, "import rewardhub.testing").returncode == 0
    for example in ("custom_source.py", "quickstart.py", "aggregation_grpo.py"):
        out = _sh(py, "-I", ROOT / "examples" / example, check=False)
        assert out.returncode == 0, f"{example}: {out.stderr}"

    # docs/ examples that need only the core
    for doc, names in {
        "docs/plugins.md": ("has_answer", "median"),
        "docs/hooks.md": ("register_sources", "register_aggregators", "register_normalizers"),
        "docs/aggregation.md": ("attribution", "scalarisers", "robust", "gates"),
    }.items():
        for name in names:
            prelude = "import rewardhub as rh\n" if doc.endswith("plugins.md") else ""
            code = prelude + _block(doc, f"<!-- example: {name} -->")
            out = _run_py(py, code)
            assert out.returncode == 0, f"{doc} {name}: {out.stderr}"

    # README "Command line" and `make demo`'s command
    assert _sh(rewardhub, "--version").stdout.startswith("rewardhub ")
    assert "clip to [min, max]" in _sh(rewardhub, "plugins").stdout
    assert "ok" in _sh(rewardhub, "validate", "specs/demo.yaml").stdout
    _sh(rewardhub, "schema", "-o", tmp_path / "pipeline.schema.json")
    scored = tmp_path / "scored.jsonl"
    _sh(rewardhub, "score", "specs/demo.yaml", "examples/data/demo.jsonl", "-o", scored)
    totals = [json.loads(x)["total"] for x in scored.read_text().splitlines()]
    present = [t for t in totals if t is not None]
    assert len(set(present)) > 1 and any(t != 0 for t in present)  # not a z-score of one
    _sh(rewardhub, "new-plugin", "politeness", "--dir", tmp_path)
    pyproject = (tmp_path / "rewardhub-politeness" / "pyproject.toml").read_text()
    assert 'test = ["pytest' in pyproject

    # commands and examples that need an extra say so before any work
    needs = [
        ((rewardhub, "serve", "specs/demo.yaml"), "server"),
        ((rewardhub, "steer", "specs/demo.yaml", "--model", "smollm2", "--prompt", "x"), "models"),
        ((rewardhub, "pareto", scored, "--plot", tmp_path / "p.png"), "plot"),
        ((rewardhub, "train", "preference-head", "nope.jsonl", "-o", tmp_path / "h"), "models"),
        ((py, "-I", ROOT / "examples" / "aggregation_pareto.py"), "plot"),
        ((py, "-I", ROOT / "examples" / "openrlhf_reward_func.py"), "openrlhf"),
        ((py, "-I", ROOT / "examples" / "preference_and_judge.py"), "models"),
    ]
    for args, extra in needs:
        out = _sh(*args, check=False)
        text = " ".join((out.stdout + out.stderr).split())
        assert out.returncode != 0 and f"rewardhub[{extra}]" in text, f"{args}: {text}"
        if args[0] == rewardhub:  # a command: one error line, nothing done
            assert "serving" not in text and "hypervolume" not in text and "Traceback" not in text
        else:  # an example: nothing printed, the error's last line names the extra
            assert out.stdout == "" and f"rewardhub[{extra}]" in out.stderr.splitlines()[-1]
    robust = (
        "import numpy as np, rewardhub as rh\n"
        "from rewardhub.aggregate import robust_weights\n"
        "try:\n    robust_weights(np.eye(2), 1.0, solver='cvxpy')\n"
        "except rh.MissingExtraError as e:\n    print(e)\n"
    )
    assert "rewardhub[solver]" in _run_py(py, robust).stdout

    # docs/serving.md with the server extra: one sample gets a real total, no 409 for OpenRLHF
    (wheel,) = (core.parent.parent.parent / "dist").glob("rewardhub-*.whl")
    _sh(py, "-m", "pip", "install", "--quiet", f"{wheel}[server]")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [rewardhub, "serve", "specs/demo.yaml", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # readiness poll, not a time bound: the loop ends on success
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        sample = {"prompt": "Say hi", "completion": "Hi! Glad to help, please ask."}
        body = httpx.post(f"{url}/v1/score", json={"samples": [sample]}).json()
        assert body["results"][0]["total"] == 1.1875 and "warnings" not in body
        assert body["total_from"] == "rewards"
        openrlhf = httpx.post(
            f"{url}/openrlhf",
            json={"query": ["Say hi Hi! Glad to help."], "prompts": ["Say hi "], "labels": [None]},
        )
        assert openrlhf.status_code == 200, openrlhf.text
    finally:
        server.terminate()
        server.wait()
        log.close()
