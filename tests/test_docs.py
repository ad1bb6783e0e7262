"""Every built-in type is documented: sources in docs/sources.md, methods in docs/aggregation.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rewardhub as rh

ROOT = Path(__file__).resolve().parent.parent
HUB = rh.Hub(entry_points=False)


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


@pytest.mark.parametrize("name", HUB.sources.names())
def test_every_builtin_source_has_a_section_with_a_spec_snippet(name: str) -> None:
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    section = _section(text, name)
    assert section, f"docs/sources.md has no '## {name}' section"
    assert "```yaml" in section and f"type: {name}" in section, f"no spec snippet for {name}"


@pytest.mark.parametrize("name", [*HUB.aggregators.names(), *HUB.normalizers.names()])
def test_every_builtin_method_is_explained(name: str) -> None:
    text = (ROOT / "docs" / "aggregation.md").read_text(encoding="utf-8")
    assert re.search(rf"`{re.escape(name)}`", text), f"docs/aggregation.md never names `{name}`"


def test_readme_opens_with_the_two_commands() -> None:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[1] == "```bash"
    assert lines[2].startswith("make demo") and lines[3].startswith("make test")
