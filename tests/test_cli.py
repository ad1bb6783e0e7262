from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import build_app

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "demo.yaml"
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return result.exit_code, result.output


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = [
    json.dumps({"prompt": "Say hi", "completion": "hi there, glad to help"}),
    json.dumps({"prompt": "Say hi", "completion": ""}),
    json.dumps(
        {"prompt": "q", "completion": "As an AI language model I think so", "metadata": {"id": 3}}
    ),
]


def test_plugins_lists_every_type_with_its_plugin() -> None:
    code, out = run("plugins")
    assert code == 0
    for name in ("length", "regex", "python", "weighted", "zscore"):
        assert name in out
    code, out = run("plugins", "--json")
    infos = json.loads(out)
    basic = next(i for i in infos if i["name"] == "rewardhub.sources.basic")
    assert basic["sources"] == ["length", "regex"] and basic["builtin"]


def test_schema_and_validate(tmp_path: Path) -> None:
    code, out = run("schema")
    assert code == 0 and json.loads(out)["title"] == "rewardhub pipeline spec"
    code, out = run("validate", SPEC)
    assert code == 0 and "ok" in out and "brevity, format, politeness" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - type: length\n    config: {target: -5}\n")
    code, out = run("validate", bad)
    assert code == 1
    assert "sources[0].config.target" in out and "greater than 0" in out


def test_score_writes_one_line_per_input_in_order(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", GOOD)
    out = tmp_path / "scored.jsonl"
    code, text = run("score", SPEC, inp, "-o", out)
    assert code == 0, text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["completion"] for r in rows] == [json.loads(g)["completion"] for g in GOOD]
    assert rows[2]["metadata"] == {"id": 3}
    assert set(rows[0]["rewards"]) == {"brevity", "format", "politeness"}
    assert rows[1]["rewards"]["politeness"] is None and "politeness" in rows[1]["reasons"]
    assert isinstance(rows[0]["total"], float)
    for col in ("objective", "mean", "n/a", "failed", "unscorable", "politeness", "33.3%"):
        assert col in text


def test_malformed_line_is_an_error_with_its_line_number(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [GOOD[0], '{"prompt": "x", "completion": ', GOOD[1]])
    out = tmp_path / "scored.jsonl"
    code, text = run("score", SPEC, inp, "-o", out)
    assert code == 1
    assert "line 2: invalid JSON" in text and "--skip-invalid" in text
    assert not out.exists()
    inp2 = write_jsonl(tmp_path / "in2.jsonl", [GOOD[0], '{"prompt": "no completion"}'])
    code, text = run("score", SPEC, inp2, "-o", out)
    assert code == 1 and "line 2: missing field 'completion'" in text


def test_skip_invalid_sets_rejects_aside_and_keeps_alignment(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [GOOD[0], "not json", "[1]", GOOD[1]])
    out = tmp_path / "scored.jsonl"
    code, text = run("score", SPEC, inp, "-o", out, "--skip-invalid")
    assert code == 0, text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    assert (
        rows[1]["line"] == 2 and rows[1]["total"] is None and "invalid JSON" in rows[1]["rejected"]
    )
    assert rows[3]["completion"] == ""
    rejects = [
        json.loads(line)
        for line in (tmp_path / "scored.jsonl.rejects.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [2, 3] and rejects[0]["text"] == "not json"


def test_resume_reuses_the_disk_cache(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", GOOD)
    out = tmp_path / "scored.jsonl"
    assert run("score", SPEC, inp, "-o", out)[0] == 0
    first = out.read_text()
    code, text = run("score", SPEC, inp, "-o", out, "--resume")
    # the two rule sources are cheap: recomputed (6 cells) rather than looked up on disk; the
    # empty completion's politeness abstained, and abstentions are never cached, so --resume
    # computes it again; the other 2 politeness cells come from the cache
    assert code == 0 and "2 cached results reused, 7 computed" in " ".join(text.split())
    assert out.read_text() == first
    # --cache-cheap keeps the rules on disk too: then all but the abstention is reused
    assert run("score", SPEC, inp, "-o", out, "--cache-cheap")[0] == 0
    code, text = run("score", SPEC, inp, "-o", out, "--resume", "--cache-cheap")
    assert code == 0 and "8 cached results reused, 1 computed" in " ".join(text.split())
    assert out.read_text() == first
    code, text = run("score", SPEC, inp, "-o", out)  # without --resume: a fresh run
    assert "0 cached results reused" in " ".join(text.split())


def test_score_options_weights_and_explain(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", GOOD[:1])
    out = tmp_path / "scored.jsonl"
    code, text = run(
        "score", SPEC, inp, "-o", out, "--weights", "brevity=0,format=0,politeness=1", "--explain"
    )
    assert code == 0, text
    row = json.loads(out.read_text())
    assert row["explain"]["contributions"]["brevity"] == 0.0
    code, text = run("score", SPEC, inp, "-o", out, "--weights", "brevity")
    assert code == 1 and "name=number" in text
    code, text = run("score", SPEC, inp, "-o", out, "--aggregate", "nope")
    assert code == 1 and "unknown aggregator 'nope'" in text
    code, text = run("score", SPEC, tmp_path / "missing.jsonl", "-o", out)
    assert code == 1 and "does not exist" in text


@pytest.mark.parametrize("cmd", [["--help"], ["score", "--help"]])
def test_help(cmd: list[str]) -> None:
    code, out = run(*cmd)
    assert code == 0 and "Usage" in out


def test_bytes_that_are_not_utf8_are_rejected_and_output_stays_utf8(tmp_path: Path) -> None:
    """Rule: input must be UTF-8. A line that is not is a rejected line (its text in the rejects
    file shows the bad bytes as \\xNN); the output is always valid UTF-8 JSON."""
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"prompt": "p", "completion": "bad \xff\xfe bytes"}\nnot json \xff\n')
    out = tmp_path / "scored.jsonl"
    code, text = run("score", SPEC, inp, "-o", out)
    assert code == 1 and "line 1: not valid UTF-8 (byte 36)" in text
    code, text = run("score", SPEC, inp, "-o", out, "--skip-invalid")
    assert code == 0, text
    first, second = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert first["line"] == 1 and first["total"] is None and "UTF-8" in first["rejected"]
    assert second["line"] == 2 and "UTF-8" in second["rejected"]
    rejects = (tmp_path / "scored.jsonl.rejects.jsonl").read_text(encoding="utf-8")
    assert json.loads(rejects.splitlines()[1])["text"] == "not json \\xff"


def test_errors_are_not_wrapped_or_read_as_markup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A narrow terminal must not split a path; brackets in a message must survive."""
    from rich.console import Console

    from rewardhub import _console

    monkeypatch.setattr(_console, "err", Console(stderr=True, width=30))
    deep = tmp_path / ("very-long-directory-name-" * 3) / "[bold]in.jsonl"
    code, text = run("score", SPEC, deep, "-o", tmp_path / "o.jsonl")
    assert code == 1
    assert str(deep) in text
