"""docs/bridges.md and the bridge sections of docs/sources.md: every YAML snippet's bridge
config validates, every Python snippet compiles and imports names that exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import rewardhub as rh

ROOT = Path(__file__).resolve().parent.parent
BRIDGES = {"openenv-rubric", "verifiers", "eval-protocol", "openjudge"}


def _blocks(lang: str) -> list[str]:
    out = []
    for doc in ("bridges.md", "sources.md"):
        text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
        out += re.findall(rf"```{lang}\n(.*?)```", text, re.S)
    return out


def _bridge_sources(data: Any) -> list[dict[str, Any]]:
    items = data.get("sources", []) if isinstance(data, dict) else data
    return [s for s in items or [] if isinstance(s, dict) and s.get("type") in BRIDGES]


CONFIGS = [s for block in _blocks("yaml") for s in _bridge_sources(yaml.safe_load(block))]


def test_every_bridge_has_a_snippet() -> None:
    assert {s["type"] for s in CONFIGS} == BRIDGES


@pytest.mark.parametrize("source", CONFIGS, ids=lambda s: str(s["type"]))
def test_yaml_snippet_config_validates(source: dict[str, Any]) -> None:
    cls = rh.Hub(entry_points=False).sources.get(source["type"])
    cls.Config.model_validate(source.get("config", {}))


@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_python_snippet_compiles_and_names_exist(block: str) -> None:
    tree = compile(block, "<docs>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewardhub"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
