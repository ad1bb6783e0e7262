"""The report and the dashboard in a real browser: Debian's chromium driven by playwright.

Every chart has drawn marks and a size, the console stays clean, and the tables the browser
shows hold the numbers of the JSON. ``make test`` installs chromium (``make browser``) and
playwright (the dev extra); without them these tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from tests.report_support import SPEC, write_eval, write_scored

pytestmark = pytest.mark.slow


def _shots(tmp_path: Path) -> Path:
    """Where screenshots go: a temporary directory, or (REWARDHUB_SCREENSHOTS=docs/images)
    the docs' images, which is how those are made."""
    return Path(os.environ.get("REWARDHUB_SCREENSHOTS") or tmp_path)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("no chromium on PATH (make browser installs Debian's package)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser: Any, url: str, headers: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    if headers:
        page.set_extra_http_headers(headers)
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url)
    return page, problems


def _charts(page: Any) -> list[dict[str, Any]]:
    return list(
        page.eval_on_selector_all(
            "svg.chart",
            """els => els.map(e => ({title: e.querySelector('title').textContent,
                marks: +e.dataset.marks, w: e.getBoundingClientRect().width,
                h: e.getBoundingClientRect().height,
                drawn: e.querySelectorAll('rect,circle,polyline,path').length}))""",
        )
    )


def _table(page: Any, key: str) -> list[list[str]]:
    return list(
        page.eval_on_selector_all(
            f'table[data-key="{key}"] tbody tr',
            "rows => rows.map(r => [...r.cells].map(c => c.dataset.value ?? c.textContent))",
        )
    )


def test_the_report_renders_every_chart_and_the_json_numbers(browser: Any, tmp_path: Path) -> None:
    import numpy as np
    from typer.testing import CliRunner

    from rewardhub.cli import build_app
    from rewardhub.evaluate import ensemble_proxies, overoptimization

    scored = write_scored(tmp_path / "scored.jsonl", 200)
    doc = write_eval(tmp_path / "eval.json")
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(20, 16))
    members = gold + rng.normal(size=(4, 20, 16))
    curves = overoptimization({"one": members[0], **ensemble_proxies(members)}, gold, [1, 4, 16])
    (tmp_path / "curves.json").write_text(json.dumps({"curves": [c.to_dict() for c in curves]}))
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        build_app(rh.Hub(entry_points=False)),
        [
            "report",
            str(scored),
            "--eval",
            str(tmp_path / "eval.json"),
            "--curves",
            str(tmp_path / "curves.json"),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    page, problems = _open(browser, out.as_uri())
    charts = _charts(page)
    assert len(charts) >= 11
    for c in charts:  # every chart drew something and takes room on the page
        assert c["marks"] > 0 and c["drawn"] > 1 and c["w"] > 100 and c["h"] > 100, c
    assert problems == []
    shown = {r[0]: r[1:] for r in _table(page, "accuracy")}
    for name, a in doc["accuracy"].items():
        assert float(shown[name][0]) == a["accuracy_scored"]
        assert float(shown[name][3]) == a["accuracy_all"]
        assert [float(x) for x in shown[name][1:3]] == a["ci_scored"]
    shot = _shots(tmp_path) / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()


def test_the_dashboard_renders_behind_the_token(browser: Any, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    import httpx

    from tests.server_support import live

    with rh.Pipeline(SPEC, hub=rh.Hub(entry_points=False)) as pipe, live(pipe, token="tok") as url:
        auth = {"authorization": "Bearer tok"}
        samples = [
            {"prompt": "q", "completion": t}
            for t in ("a b c", "crash", "down", "x y", "a long answer that runs on and on")
        ]
        assert httpx.post(f"{url}/v1/score", json={"samples": samples}, headers=auth).is_success
        page, problems = _open(browser, f"{url}/dashboard")
        assert "bearer token" in page.content()  # no token: refused
        page.close()
        page, problems = _open(browser, f"{url}/dashboard", auth)
        charts = _charts(page)
        assert charts and all(c["w"] > 100 for c in charts)
        assert sum(c["marks"] > 0 for c in charts) >= len(charts) - 1  # attribution may be empty
        assert problems == []
        summary = {r[0]: r[1:] for r in _table(page, "summary")}
        assert json.loads(summary["words"][0]) == 4  # of 5: one unscorable
        page.screenshot(path=str(_shots(tmp_path) / "dashboard.png"), full_page=True)
        page.close()
