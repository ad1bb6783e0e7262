"""``GET /dashboard``: the report's views of the server's recent scored samples, with its
request and source counters. Behind the bearer token like every non-probe route (the guard
checks it); one HTML page, no script, refreshed by the browser every ``refresh_s`` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from rewardhub.report.data import ScoredData
from rewardhub.report.html import page, scored_section, table
from rewardhub.server.codec import row_record

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rewardhub.batching import Row
    from rewardhub.server.state import ServerState

#: scored samples the dashboard keeps (the most recent)
WINDOW = 10_000


class RecentWindow:
    """The last ``size`` scored samples; their records (``rewards``, ``total``,
    ``outcomes``) are built when the page is drawn, not on the scoring path."""

    def __init__(self, objectives: Sequence[str], size: int = WINDOW) -> None:
        self.objectives = list(objectives)
        self.rows: deque[Row] = deque(maxlen=size)
        self.seen = 0

    def add(self, rows: Sequence[Row]) -> None:
        self.rows.extend(rows)
        self.seen += len(rows)

    def records(self) -> list[dict[str, Any]]:
        return [row_record(r, self.objectives) for r in self.rows]

    def data(self) -> ScoredData | None:
        return ScoredData.from_records(self.records()) if self.rows else None


def install_dashboard(
    app: FastAPI,
    state: ServerState,
    refresh_s: int = 10,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> RecentWindow:
    """Add ``/dashboard`` to ``app`` and record every scored sample into its window."""
    from fastapi import APIRouter
    from fastapi.responses import HTMLResponse

    scorer = state.scorer
    window = RecentWindow(scorer.pipeline.objectives)
    rows: Callable[..., Awaitable[list[Row]]] = scorer.rows

    async def recording(samples: Any, weights: Any = None) -> list[Row]:
        out = await rows(samples, weights)
        window.add(out)
        return out

    vars(scorer)["rows"] = recording  # every route scores through scorer.rows
    router = APIRouter()

    @router.get(
        "/dashboard",
        response_class=HTMLResponse,
        response_model=None,
        tags=["ops"],
        responses=responses,  # behind the bearer token: its refusal is documented too
    )
    async def dashboard() -> Any:
        """The report's charts over the recent scored samples, and the server's counters."""
        return HTMLResponse(render(state, window, refresh_s))

    app.include_router(router)
    return window


def render(state: ServerState, window: RecentWindow, refresh_s: int = 10) -> str:
    """The dashboard page."""
    sections = [_counters(state)]
    data = window.data()
    if data is None:
        sections.append("<h2>Scored samples</h2><p>nothing scored yet</p>")
    else:
        sections.append(scored_section(data))
    note = (
        f"the last {len(window.rows):,} of {window.seen:,} samples scored since the server "
        f"started; refreshed every {refresh_s} s"
    )
    html = page("rewardhub dashboard", sections, note)
    return html.replace(
        "<head>", f'<head><meta http-equiv="refresh" content="{int(refresh_s)}">', 1
    )


def _counters(state: ServerState) -> str:
    from rewardhub.report.html import num_cell, text_cell

    requests: list[list[str]] = []
    for metric in state.metrics.registry.collect():
        if metric.name == "rewardhub_requests":
            for s in metric.samples:
                if s.name.endswith("_total"):
                    requests.append(
                        [
                            text_cell(s.labels["route"]),
                            text_cell(s.labels["status"]),
                            num_cell(int(s.value)),
                        ]
                    )
    stats = state.scorer.pipeline.engine.stats
    sources = [
        [
            text_cell(sid),
            *(
                num_cell(stats.outcomes.get(sid, {}).get(kind, 0))
                for kind in ("not applicable", "failed", "unscorable")
            ),
            num_cell(stats.seconds.get(sid, math.nan)),
        ]
        for sid in sorted(set(stats.outcomes) | set(stats.seconds))
    ]
    cache = [
        [
            num_cell(stats.calls),
            num_cell(stats.computed),
            num_cell(stats.memory_hits),
            num_cell(stats.disk_hits),
        ]
    ]
    return (
        "<h2>Server</h2>"
        + table("requests", ["route", "status", "requests"], requests, "requests by route")
        + table("engine", ["calls", "computed", "memory hits", "disk hits"], cache, "engine")
        + table(
            "sources",
            ["source", "not applicable", "failed", "unscorable", "seconds"],
            sources,
            "per source",
        )
        + f'<p class="note">in flight now: {escape(str(state.inflight))}</p>'
    )
