from __future__ import annotations

import os
import re
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# One intra-op thread per test process (and the processes they start): with pytest-xdist one
# worker per core already fills the machine, and two torch/BLAS threads per worker spin
# against each other (a forward pass of SmolLM2 ran 50x slower on a loaded 2-core box).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def doc_example(doc: str, name: str, into: types.ModuleType | None = None) -> types.ModuleType:
    """Execute the code block after ``<!-- example: name -->`` in docs/<doc> as a module, or
    inside ``into`` (an earlier block's module) for a block that continues it."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    m = re.search(rf"<!-- example: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"docs/{doc} has no example block named {name!r}"
    module = into or types.ModuleType(f"doc_example_{name}")
    exec(compile(m.group(1), f"docs/{doc}:{name}", "exec"), module.__dict__)
    return module


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables size to the terminal; pin the width so table assertions do not depend on CI's."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A temporary directory every user can reach (the sandbox runs as uid 65534 under root)."""
    with tempfile.TemporaryDirectory(prefix="rewardhub-test-") as d:
        os.chmod(d, 0o755)
        yield Path(d)
