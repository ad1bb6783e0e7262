"""``rewardhub new-plugin`` scaffolds a package that installs and passes its own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import build_app
from tests.conftest import ROOT


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(build_app(rh.Hub(entry_points=False)), list(args))
    return res.exit_code, res.output


def test_scaffold_layout_and_no_overwrite(tmp_path: Path) -> None:
    code, out = _cli("new-plugin", "code-style", "--dir", str(tmp_path))
    assert code == 0, out
    pkg = tmp_path / "rewardhub-code-style"
    assert (pkg / "rewardhub_code_style" / "__init__.py").is_file()
    assert (
        '[project.entry-points.rewardhub]\ncode-style = "rewardhub_code_style"'
        in (pkg / "pyproject.toml").read_text()
    )
    (pkg / "README.md").write_text("mine")
    code, out = _cli("new-plugin", "code-style", "--dir", str(tmp_path))
    assert code == 1 and "already exists" in out and "--force" in out
    assert (pkg / "README.md").read_text() == "mine"
    assert _cli("new-plugin", "code-style", "--dir", str(tmp_path), "--force")[0] == 0
    assert (pkg / "README.md").read_text() != "mine"
    code, out = _cli("new-plugin", "9 bad name", "--dir", str(tmp_path))
    assert code == 1 and "not usable" in out


@pytest.mark.slow
def test_scaffold_installs_passes_its_tests_and_is_listed(tmp_path: Path) -> None:
    """pip builds and installs the scaffold (into its own target folder, not the shared venv:
    pytest-xdist workers building a Hub meanwhile would find its entry point half-installed),
    its own tests pass, and ``rewardhub plugins`` lists it."""
    name = f"scaffold{uuid.uuid4().hex[:8]}"
    assert _cli("new-plugin", name, "--dir", str(tmp_path))[0] == 0
    pkg, site = tmp_path / f"rewardhub-{name}", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", "install",
         "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg)],
        check=True,
        timeout=180,
    )  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "REWARDHUB_LOAD_PLUGINS": f"rewardhub-{name}",
    }
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
        cwd=tmp_path,  # not the package folder: the tests import the installed package
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "passed" in tests.stdout and "failed" not in tests.stdout
    listed = subprocess.run(
        [sys.executable, "-c", "from rewardhub.cli import main; main()", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = {p["name"]: p for p in json.loads(listed.stdout)}
    assert info[name]["distribution"] == f"rewardhub-{name}"
    assert info[name]["sources"] == [name]
