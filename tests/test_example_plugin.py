"""The separately installed plugin in plugins/rewardhub-example (make test installs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rewardhub as rh
from rewardhub.testing import check_source, plugin_with

# the core must install and pass its tests without plugins/ (DESIGN.md): skip, never fail
pytest.importorskip("rewardhub_example", reason="plugins/rewardhub-example is not installed")


def test_installed_plugin_is_discovered_through_its_entry_point() -> None:
    hub = rh.Hub()
    assert "politeness" in hub.sources
    info = {p.name: p for p in hub.plugins()}["politeness"]
    assert info.distribution == "rewardhub-example" and info.sources == ["politeness"]
    with rh.Pipeline({"sources": [{"type": "politeness"}]}, hub=hub) as pipe:
        res = pipe.score([rh.Sample(prompt="", completion="Thanks, glad to help. Sorry!")])
    assert res.vector.column("politeness").tolist() == [0.6]


def test_load_plugins_env_selects_distributions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")
    assert "politeness" not in rh.Hub().sources
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "rewardhub-example")
    assert "politeness" in rh.Hub().sources
    monkeypatch.delenv("REWARDHUB_LOAD_PLUGINS")
    monkeypatch.setenv("REWARDHUB_DISABLE_PLUGINS", "rewardhub-example")
    assert "politeness" not in rh.Hub().sources


def test_a_second_politeness_source_is_a_duplicate_error() -> None:
    @rh.reward_source("politeness")
    def impostor(sample: rh.Sample) -> float:
        return 0.0

    with pytest.raises(rh.DuplicateNameError, match="'politeness'.*'politeness'.*'local'"):
        rh.Hub(plugins=[plugin_with(impostor, name="local")])


def test_plugin_passes_the_conformance_kit() -> None:
    check_source(rh.Hub().sources.get("politeness"), {"markers": ["hi", "there"]})


def test_this_file_skips_when_the_plugin_is_not_installed(tmp_path: Path) -> None:
    # a module that fails to import shadows the installed one, as if it were uninstalled
    (tmp_path / "rewardhub_example.py").write_text("raise ModuleNotFoundError('uninstalled')\n")
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root), os.environ.get("PYTHONPATH", "")]),
        "REWARDHUB_LOAD_PLUGINS": "",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            str(Path(__file__)),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    # 5: pytest's "no tests ran" (the whole module skipped), never 1 (a failure or an error)
    assert proc.returncode in (0, 5) and "1 skipped" in out and "error" not in out.lower(), out
