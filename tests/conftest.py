from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def doc_example(doc: str, name: str) -> types.ModuleType:
    """Execute the code block after ``<!-- example: name -->`` in docs/<doc> as a module."""
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    m = re.search(rf"<!-- example: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"docs/{doc} has no example block named {name!r}"
    module = types.ModuleType(f"doc_example_{name}")
    exec(compile(m.group(1), f"docs/{doc}:{name}", "exec"), module.__dict__)
    return module


@pytest.fixture
def root() -> Path:
    return ROOT
