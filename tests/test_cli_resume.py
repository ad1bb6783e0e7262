"""``score --resume`` is exact: lines an interrupted run wrote are kept, never recomputed,
whatever the cache holds; a cut last line is redone; a partial of another input is refused."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.cli import build_app

SPEC = """
sources:
  - id: len
    type: length
    config: {target: 10}
  - id: digits
    type: regex
    config: {pattern: "\\\\d"}
aggregate: {method: weighted}
"""


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return result.exit_code, result.output


def setup(tmp_path: Path, n: int = 6) -> tuple[Path, Path, Path]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps({"prompt": "p", "completion": f"answer {i}" * (i + 1)}) for i in range(n)]
    lines.insert(3, "")  # a blank line has no output line
    inp.write_text("\n".join(lines) + "\n")
    return spec, inp, tmp_path / "out.jsonl"


def test_kept_lines_are_never_recomputed(tmp_path: Path) -> None:
    spec, inp, out = setup(tmp_path)
    assert run("score", spec, inp, "-o", out)[0] == 0
    full = out.read_text().splitlines()
    # an interrupted run wrote three lines; mark them so recomputing would show
    kept = [json.dumps({**json.loads(line), "total": 123.0}) for line in full[:3]]
    out.unlink()
    (tmp_path / "out.jsonl.partial").write_text("\n".join(kept) + "\n")
    code, text = run("score", spec, inp, "-o", out, "--resume")
    assert code == 0, text
    assert "3 lines kept from the interrupted run" in " ".join(text.split())
    assert out.read_text().splitlines() == kept + full[3:]
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_line_cut_off_by_a_kill_is_dropped_and_redone(tmp_path: Path) -> None:
    spec, inp, out = setup(tmp_path)
    assert run("score", spec, inp, "-o", out)[0] == 0
    full = out.read_text().splitlines()
    out.unlink()
    (tmp_path / "out.jsonl.partial").write_text("\n".join(full[:2]) + "\n" + full[2][:15])
    code, text = run("score", spec, inp, "-o", out, "--resume")
    assert code == 0, text
    assert "2 lines kept" in " ".join(text.split())
    assert out.read_text().splitlines() == full


def test_a_partial_of_another_input_is_refused(tmp_path: Path) -> None:
    spec, inp, out = setup(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt": "p", "completion": "something else"}) + "\n")
    assert run("score", spec, other, "-o", out)[0] == 0
    out.rename(tmp_path / "out.jsonl.partial")
    code, text = run("score", spec, inp, "-o", out, "--resume")
    assert code == 1 and "belongs to another input" in " ".join(text.split())
    # a partial longer than the input is refused too, and neither file is touched
    partial = tmp_path / "out.jsonl.partial"
    before = partial.read_text()
    code, text = run("score", spec, other, "-o", out, "--resume")
    assert code == 0  # same input: one line kept, nothing to do
    partial.write_text(before * 20)
    code, text = run("score", spec, other, "-o", out, "--resume")
    assert code == 1 and "has only 1" in " ".join(text.split())
    assert partial.read_text() == before * 20


def test_without_resume_a_partial_is_started_afresh(tmp_path: Path) -> None:
    spec, inp, out = setup(tmp_path)
    (tmp_path / "out.jsonl.partial").write_text('{"total": 5}\n')
    code, text = run("score", spec, inp, "-o", out)
    assert code == 0, text
    assert all(json.loads(line)["total"] != 5 for line in out.read_text().splitlines())


def test_rejected_lines_keep_their_place_across_a_resume(tmp_path: Path) -> None:
    spec, inp, out = setup(tmp_path, n=4)
    lines = inp.read_text().splitlines()
    lines.insert(1, "not json")
    inp.write_text("\n".join(lines) + "\n")
    assert run("score", spec, inp, "-o", out, "--skip-invalid")[0] == 0
    full = out.read_text().splitlines()
    rejects = (tmp_path / "out.jsonl.rejects.jsonl").read_text()
    out.unlink()
    (tmp_path / "out.jsonl.rejects.jsonl").unlink()
    (tmp_path / "out.jsonl.partial").write_text("\n".join(full[:2]) + "\n")
    (tmp_path / "out.jsonl.rejects.jsonl.partial").write_text(rejects)
    code, text = run("score", spec, inp, "-o", out, "--skip-invalid", "--resume")
    assert code == 0, text
    assert out.read_text().splitlines() == full
    assert (tmp_path / "out.jsonl.rejects.jsonl").read_text() == rejects


def test_resumed_chunks_start_where_the_interrupted_run_started_them(tmp_path: Path) -> None:
    """With a spec comparing the lines of a chunk (z-scores per chunk), a resumed run must
    cut its chunks where the first run did, blank lines included, or the rest differs."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + "normalize: zscore\n")
    inp = tmp_path / "in.jsonl"
    lines = [json.dumps({"prompt": "p", "completion": "7" * (i * i % 11)}) for i in range(9)]
    lines[2] = ""  # the first chunk (3 lines) ends with a blank line: 2 output lines
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    assert run("score", spec, inp, "-o", out, "--chunk-size", 3)[0] == 0
    full = out.read_text().splitlines()
    out.rename(tmp_path / "out.jsonl.partial")
    (tmp_path / "out.jsonl.partial").write_text("\n".join(full[:2]) + "\n")  # chunk 1 only
    code, text = run("score", spec, inp, "-o", out, "--chunk-size", 3, "--resume")
    assert code == 0, text
    assert out.read_text().splitlines() == full
