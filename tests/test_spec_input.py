"""Spec loading refuses hostile files fast, and validation rejects weights and objective names
that would make every total NaN or break the output's JSON keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.errors import SpecError
from rewardhub.spec import read_spec_file


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"sources: [{{type: length, config: {{x: *a{levels}}}}}]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(_bomb(), encoding="utf-8")
    assert spec.stat().st_size < 700
    start = time.perf_counter()
    with pytest.raises(SpecError, match="alias bomb"):
        read_spec_file(spec)
    assert time.perf_counter() - start < 2.0  # today: 35 s and 2.9 GB


def test_shared_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text(_bomb(levels=3, width=5), encoding="utf-8")  # 5**4 values: fine
    data = read_spec_file(spec)
    assert len(data["a3"]) == 5 and data["a3"][0][0][0] == ["lol"] * 5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("sources: &s [{type: length, config: {x: *s}}]\n", "contains it"),
        ("sources: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML"),
        ("sources: [\n", "invalid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_hostile_yaml_is_a_spec_error(tmp_path: Path, text: str, words: str) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=words):
        read_spec_file(spec)


def test_huge_deep_or_binary_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (5 << 20))
    with pytest.raises(SpecError, match="at most 4 MiB"):
        read_spec_file(big)
    deep = tmp_path / "deep.json"
    deep.write_text('{"sources": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SpecError, match="nested too deeply"):
        read_spec_file(deep)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"sources: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        read_spec_file(binary)


BASE: dict[str, Any] = {
    "objectives": ["brevity", "format"],
    "sources": [
        {"type": "length"},
        {"type": "regex", "config": {"pattern": "x", "objective": "format"}},
    ],
}


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"objectives": ["", "format"]}, "objectives", "must not be empty"),
        ({"objectives": [{"name": "  "}, "format"]}, "objectives", "must not be empty"),
        ({"objectives": ["brevity ", "format"]}, "objectives", "leading or trailing blanks"),
        ({"objectives": ["brevity", "brevity"]}, "objectives", "declared twice"),
        (
            {"sources": [{"type": "length", "rename": {"brevity": ""}}], "objectives": None},
            "sources[0].rename",
            "must not be empty",
        ),
        ({"aggregate": {"weights": {"brevity": 1e308}}}, "aggregate", "finite number between"),
        ({"aggregate": {"weights": {"brevity": float("inf")}}}, "aggregate", "finite number"),
        ({"aggregate": {"weights": {"brevity": float("nan")}}}, "aggregate", "finite number"),
        (
            {"aggregate": {"weights": {"brevity": 0, "format": 0.0}}},
            "aggregate.weights",
            "every objective's weight is 0",
        ),
        (
            {"sources": [{"type": "length", "weight": 1e300}], "objectives": None},
            "sources[0].weight",
            "finite number",
        ),
        (
            {
                "sources": [
                    {"type": "length", "weight": 0},
                    {"type": "regex", "weight": {"format": 0}, "config": {"pattern": "x"}},
                ],
                "objectives": None,
            },
            "aggregate.weights",
            "every objective's weight is 0",
        ),
    ],
)
def test_bad_weights_and_objective_names_fail_validation(
    change: dict[str, Any], path: str, words: str
) -> None:
    spec = {**BASE, **change}
    if spec["objectives"] is None:
        del spec["objectives"]
    with pytest.raises(SpecError, match=words) as info:
        rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False))
    assert str(info.value).startswith(path), str(info.value)


def test_zero_weight_on_some_objectives_is_fine() -> None:
    spec = {**BASE, "aggregate": {"weights": {"brevity": 0}}}
    with rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False)) as pipe:
        res = pipe.score([rh.Sample(prompt="p", completion="x" * 10)])
    assert res.total[0] == 1.0  # format counts alone
