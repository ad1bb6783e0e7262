"""`rewardhub report` and the server's /dashboard: one self-contained page whose tables hold
the exact numbers (the browser side is in tests/test_report_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub.aggregate import pareto_front
from rewardhub.cli import build_app
from rewardhub.report import ScoredData, build_report, front_2d
from tests.report_support import SPEC, rows, write_eval, write_scored

runner = CliRunner()


def run(*args: object) -> tuple[int, str]:
    res = runner.invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return res.exit_code, res.output


def test_front_2d_is_the_pareto_front() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(300, 2))
    v[::50] = np.nan
    got = front_2d(v[:, 0], v[:, 1])
    ok = ~np.isnan(v).any(axis=1)
    want = v[ok][pareto_front(v[ok])]
    assert sorted(map(tuple, got)) == sorted(map(tuple, want))
    assert (np.diff(got[:, 0]) > 0).all()  # sorted by x


def test_scored_data_counts_outcomes_exactly(tmp_path: Path) -> None:
    data = ScoredData.read(write_scored(tmp_path / "scored.jsonl"))
    assert data.n == 60 and data.objectives == ["brevity", "words"]
    summary = {r["objective"]: r for r in data.summary()}
    assert summary["words"]["not applicable"] == pytest.approx(6 / 60)  # every 11th
    assert summary["words"]["failed"] > 0 and summary["words"]["unscorable"] > 0
    assert summary["total"]["unscorable"] == summary["words"]["unscorable"]
    words = data.values[:, 1]
    assert summary["words"]["mean"] == pytest.approx(float(np.nanmean(words)))
    assert data.binding  # max-min names its binding objective


def test_report_is_self_contained_and_its_tables_hold_the_json(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.jsonl")
    doc = write_eval(tmp_path / "eval.json")
    curves = {
        "curves": [
            {
                "proxy": "p",
                "n": [1, 2],
                "kl_bound": [0.0, 0.19],
                "kl_estimate": [0.0, 0.1],
                "gold": [0.1, 0.2],
                "proxy_reward": [0.3, 0.5],
            }
        ]
    }
    (tmp_path / "curves.json").write_text(json.dumps(curves))
    out = tmp_path / "report.html"
    code, text = run(
        "report",
        scored,
        "--eval",
        tmp_path / "eval.json",
        "--curves",
        tmp_path / "curves.json",
        "-o",
        out,
    )
    assert code == 0, text
    html = out.read_text()
    assert "<script" not in html and re.findall(r"<link[^>]*>", html) == [
        '<link rel="icon" href="data:,">'
    ]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    acc = {r[0]: r[1:] for r in rows(html, "accuracy")}
    for name, a in doc["accuracy"].items():
        assert acc[name][0] == a["accuracy_scored"]  # the exact number, shown as a percentage
        assert acc[name][3] == a["accuracy_all"]
        assert acc[name][6] == a["n_scored"]
    summary = {r[0]: r[1:] for r in rows(html, "summary")}
    data = ScoredData.read(scored)
    for s in data.summary():
        assert summary[s["objective"]][:2] == [s["count"], pytest.approx(s["mean"])]
    assert rows(html, "bon")[1] == ["p", 2, 0.19, 0.1, 0.2, 0.5]
    assert html.count('<svg class="chart"') >= 8


def test_report_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    code, text = run("report", "-o", tmp_path / "r.html")
    assert code == 2 and "give a scored file" in text
    (tmp_path / "e.json").write_text("{}")
    code, text = run("report", "--eval", tmp_path / "e.json", "-o", tmp_path / "r.html")
    assert code == 2 and "not an eval result" in text
    (tmp_path / "s.jsonl").write_text('{"prompt": "q"}\n')
    code, text = run("report", tmp_path / "s.jsonl", "-o", tmp_path / "r.html")
    assert code == 2 and "no scored lines" in text
    scored = write_scored(tmp_path / "scored.jsonl", 10)
    code, text = run("report", scored, "--x", "nope", "-o", tmp_path / "r.html")
    assert code == 2 and "--x 'nope' is not an objective" in text
    code, text = run("report", scored, "-o", tmp_path / "missing" / "r.html")
    assert code == 2 and "does not exist" in text


def test_large_files_draw_a_sample_but_count_everything() -> None:
    rng = np.random.default_rng(0)
    recs = [
        {"rewards": {"a": float(x), "b": float(y)}, "total": float(min(x, y))}
        for x, y in rng.normal(size=(5000, 2))
    ]
    data = ScoredData.from_records(recs)
    html = build_report(data)
    assert "2,000 of 5,000 points drawn" in html
    assert rows(html, "summary")[0][1] == 5000


def test_dashboard_behind_the_token_shows_recent_samples() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardhub.server.app import create_app
    from rewardhub.server.settings import ServerSettings

    with rh.Pipeline(SPEC, hub=rh.Hub(entry_points=False)) as pipe:
        app = create_app(pipe, ServerSettings(token="s3cret", window_ms=0))
        with TestClient(app) as client:
            assert client.get("/dashboard").status_code == 401
            auth = {"authorization": "Bearer s3cret"}
            page = client.get("/dashboard", headers=auth)
            assert page.status_code == 200 and "nothing scored yet" in page.text
            samples = [{"prompt": "q", "completion": t} for t in ("a b c", "crash", "down", "x")]
            assert client.post("/v1/score", json={"samples": samples}, headers=auth).is_success
            html = client.get("/dashboard", headers=auth).text
    assert "last 4 of 4 samples" in html
    summary = {r[0]: r[1:] for r in rows(html, "summary")}
    assert summary["words"][0] == 3  # a failed check holds its failing value
    assert summary["words"][-2:] == [0.25, 0.25]  # failed, unscorable: one of four each
    requests = rows(html, "requests")
    assert ["/v1/score", "200", 1] in requests
    assert '<meta http-equiv="refresh"' in html and "<script" not in html
