"""`rewardhub pareto` and the docs of the aggregation layer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.aggregate import hypervolume, nondominated_sort
from rewardhub.cli import build_app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args: object) -> object:
    return runner.invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])


@pytest.fixture
def scored(tmp_path: Path) -> Path:
    rows = [
        {"a": 1.0, "b": 0.0, "c": 0.5},
        {"a": 0.0, "b": 1.0, "c": 0.5},
        {"a": 0.5, "b": 0.5, "c": 0.5},
        {"a": 0.2, "b": 0.2, "c": None},
        {"a": 0.9, "b": 0.1, "c": 0.4},
    ]
    path = tmp_path / "scored.jsonl"
    lines = [
        json.dumps({"prompt": "p", "completion": str(i), "rewards": r}) for i, r in enumerate(rows)
    ]
    lines.insert(2, json.dumps({"line": 3, "rejected": "bad", "total": None}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_pareto_command_json(scored: Path) -> None:
    res = run("pareto", scored, "--objectives", "a,b", "--ref", "0,0", "--json")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    out = json.loads(res.output)  # type: ignore[attr-defined]
    vals = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.2, 0.2], [0.9, 0.1]])
    assert out["hypervolume"] == pytest.approx(hypervolume(vals, [0, 0]))
    # line numbers skip the rejected line 3
    assert out["ranks"] == dict(zip(["1", "2", "4", "5", "6"], nondominated_sort(vals).tolist()))
    assert [p["line"] for p in out["front"]] == [1, 2, 4, 6]
    assert out["front_sizes"] == [4, 1]


def test_pareto_command_tables_and_plots(scored: Path, tmp_path: Path) -> None:
    res = run("pareto", scored, "--plot", tmp_path / "front.png")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert "Pareto front" in res.output and "hypervolume" in res.output  # type: ignore[attr-defined]
    assert (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    res = run("pareto", scored, "--objectives", "a,b", "--plot", tmp_path / "two.png")
    assert res.exit_code == 0 and (tmp_path / "two.png").stat().st_size > 0  # type: ignore[attr-defined]


def test_pareto_command_errors(scored: Path, tmp_path: Path) -> None:
    res = run("pareto", scored, "--objectives", "a,zz")
    assert res.exit_code == 1 and "unknown objective" in res.output  # type: ignore[attr-defined]
    res = run("pareto", scored, "--ref", "0")
    assert res.exit_code == 1 and "--ref has 1 numbers for 3" in res.output  # type: ignore[attr-defined]
    res = run("pareto", tmp_path / "missing.jsonl")
    assert res.exit_code == 1 and "does not exist" in res.output  # type: ignore[attr-defined]


# -- docs -------------------------------------------------------------------------------------

DOC = ROOT / "docs" / "aggregation.md"


def test_every_builtin_method_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    hub = rh.Hub(entry_points=False)
    for registry in (hub.aggregators, hub.normalizers):
        for name in registry.names():
            if registry.owner(name).startswith("rewardhub.aggregate"):
                assert re.search(rf"`{re.escape(name)}`", text), f"{name} is not in {DOC.name}"


def test_doc_examples_run() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example: (\S+) -->\s*```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for name, code in blocks:
        exec(compile(code, f"docs/aggregation.md:{name}", "exec"), {"__name__": f"doc_{name}"})
