"""The report page: one self-contained HTML document (inline CSS and SVG, no script, nothing
fetched) built from scored samples, an eval result and best-of-n curves.

Tables carry each number exactly in a ``data-value`` attribute (what the cell shows is
rounded), so tools and tests can read the page back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from rewardhub.report import svg
from rewardhub.report.data import OUTCOMES, ScoredData, front_2d

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #eee;font-size:11px}svg text.t{font-weight:600}
svg .ax{fill:none;stroke:#888}.note{color:#666}
"""


def num_cell(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return '<td class="n" data-value="">–</td>'
    if isinstance(x, int) and not pct:
        return f'<td class="n" data-value="{x}">{x:,}</td>'
    shown = f"{100 * x:.1f}" if pct else f"{x:.4g}"
    return f'<td class="n" data-value="{float(x)!r}">{shown}</td>'


def table(key: str, head: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A table whose cells are already ``<td>`` markup (see :func:`_num`); ``key`` names it."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f'<table data-key="{escape(key)}">{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def text_cell(text: str) -> str:
    return f"<td>{escape(text)}</td>"


def scored_section(data: ScoredData, x: str | None = None, y: str | None = None) -> str:
    """Distributions, summary, correlation heatmap, Pareto front, attribution, outcome rates."""
    parts = [f"<h2>Scored samples ({data.n:,})</h2>"]
    stats = data.summary()
    heads = ["objective", "count", "mean", "std", "min", "max", *(f"{o} %" for o in OUTCOMES)]
    rows = [
        [text_cell(r["objective"]), num_cell(r["count"])]
        + [num_cell(r[s]) for s in ("mean", "std", "min", "max")]
        + [num_cell(r[o], pct=True) for o in OUTCOMES]
        for r in stats
    ]
    parts.append(table("summary", heads, rows, "exact, over every sample"))
    charts = [
        svg.histogram(data.values[:, j], f"{o} distribution") for j, o in enumerate(data.objectives)
    ]
    charts.append(svg.histogram(data.total, "total distribution"))
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    names, matrix = data.spearman()
    charts = [svg.heatmap(names, matrix, "Spearman correlation of objectives")]
    if len(data.objectives) >= 2:
        xo = x or data.objectives[0]
        yo = y or data.objectives[1]
        xs, ys = (
            data.values[:, data.objectives.index(xo)],
            data.values[:, data.objectives.index(yo)],
        )
        keep = data.sample_rows()
        charts.append(
            svg.scatter(
                xs[keep],
                ys[keep],
                front_2d(xs, ys),
                f"Pareto front ({len(keep):,} of {data.n:,} points drawn)",
                xo,
                yo,
            )
        )
    labels = [*data.objectives, "total"]
    charts.append(
        svg.bars(
            labels,
            {o: [100 * r[o] for r in stats] for o in OUTCOMES},
            "not applicable / failed / unscorable (% of samples)",
        )
    )
    charts.append(_attribution(data))
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    return "".join(parts)


def _attribution(data: ScoredData) -> str:
    """Which objective set the total: the binding one (max-min-like aggregators), else each
    objective's share of the |contributions| (weighted ones)."""
    counts: Mapping[str, float] = data.binding or data.contribution
    if not counts:
        return svg.bars([], {}, "attribution (score with --explain to see it)")
    what = "binding" if data.binding else "|contribution|"
    total = sum(counts.values())
    names = list(counts)
    return svg.bars(
        names,
        {what: [100 * counts[n] / total for n in names]},
        f"which objective set the total ({what}, %)",
    )


def eval_section(doc: Mapping[str, Any]) -> str:
    """The eval result's tables and its matrices."""
    parts = [f"<h2>Evaluation on {doc['pairs']:,} preference pairs</h2>"]
    heads = [
        "column",
        "accuracy, scored %",
        "CI low",
        "CI high",
        "accuracy, all %",
        "CI low",
        "CI high",
        "scored pairs",
        "ties",
        "n/a %",
        "failed %",
        "unscorable %",
    ]
    rows = []
    for name, a in doc["accuracy"].items():
        cov = doc["coverage"][name]
        rows.append(
            [
                text_cell(name),
                num_cell(a["accuracy_scored"], True),
                num_cell(a["ci_scored"][0], True),
                num_cell(a["ci_scored"][1], True),
                num_cell(a["accuracy_all"], True),
                num_cell(a["ci_all"][0], True),
                num_cell(a["ci_all"][1], True),
                num_cell(a["n_scored"]),
                num_cell(a["ties"]),
                num_cell(cov["not_applicable"], True),
                num_cell(cov["failed"], True),
                num_cell(cov["unscorable"], True),
            ]
        )
    parts.append(table("accuracy", heads, rows, "pairwise accuracy, ties count ½, 95% bootstrap"))
    if doc.get("subsets"):
        cols = list(doc["subsets"])
        subsets = list(next(iter(doc["subsets"].values())))
        rows = [
            [text_cell(s), *(num_cell(doc["subsets"][c][s]["accuracy_scored"], True) for c in cols)]
            for s in subsets
        ]
        parts.append(table("subsets", ["subset", *cols], rows, "accuracy % per subset (scored)"))
    if doc.get("sections"):
        first = next(iter(doc["sections"].values()))["all"]
        heads = list(first)
        rows = [
            [text_cell(c), *(num_cell(v["all"].get(h), True) for h in heads)]
            for c, v in doc["sections"].items()
        ]
        parts.append(
            table("sections", ["column", *heads], rows, "RewardBench sections (all pairs)")
        )
    if doc.get("calibration"):
        rows = [
            [text_cell(c), num_cell(v["n"]), num_cell(v["ece"])]
            for c, v in doc["calibration"].items()
        ]
        parts.append(table("calibration", ["column", "pairs", "ECE"], rows, "calibration"))
    charts = [
        svg.heatmap(doc["spearman"]["names"], doc["spearman"]["matrix"], "Spearman (completions)"),
        svg.heatmap(doc["agreement"]["names"], doc["agreement"]["matrix"], "agreement on pairs"),
    ]
    for c, v in doc.get("calibration", {}).items():
        bins = [b for b in v["bins"] if b["count"]]
        charts.append(
            svg.lines(
                [
                    ("observed", [b["confidence"] for b in bins], [b["accuracy"] for b in bins]),
                    ("ideal", [0.5, 1.0], [0.5, 1.0]),
                ],
                f"reliability: {c}",
                "confidence",
                "accuracy",
            )
        )
    parts.append('<div class="charts">' + "".join(charts) + "</div>")
    return "".join(parts)


def curves_section(curves: Sequence[Mapping[str, Any]]) -> str:
    """Best-of-n gold reward against KL for each proxy, and the table of numbers."""
    series = [(c["proxy"], c["kl_bound"], c["gold"]) for c in curves]
    proxy = [(c["proxy"], c["kl_bound"], c["proxy_reward"]) for c in curves]
    rows = [
        [text_cell(c["proxy"]), num_cell(n), num_cell(kb), num_cell(ke), num_cell(g), num_cell(p)]
        for c in curves
        for n, kb, ke, g, p in zip(
            c["n"], c["kl_bound"], c["kl_estimate"], c["gold"], c["proxy_reward"]
        )
    ]
    return (
        "<h2>Over-optimisation: best-of-n</h2>"
        '<div class="charts">'
        + svg.lines(series, "gold reward of best-of-n by each proxy", "KL bound (nats)", "gold")
        + svg.lines(proxy, "proxy reward of best-of-n", "KL bound (nats)", "proxy")
        + "</div>"
        + table("bon", ["proxy", "n", "KL bound", "KL estimate", "gold", "proxy"], rows)
    )


def page(title: str, sections: Sequence[str], note: str = "") -> str:
    """The whole document."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'  # no favicon fetch
        f"<style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        + (f'<p class="note">{escape(note)}</p>' if note else "")
        + "".join(sections)
        + "</body></html>"
    )


def build_report(
    scored: ScoredData | None = None,
    eval_doc: Mapping[str, Any] | None = None,
    curves: Sequence[Mapping[str, Any]] | None = None,
    *,
    title: str = "rewardhub report",
    note: str = "",
) -> str:
    """The report of whichever inputs are given (at least one)."""
    sections = []
    if scored is not None:
        sections.append(scored_section(scored))
    if eval_doc is not None:
        sections.append(eval_section(eval_doc))
        curves = curves or eval_doc.get("overoptimization")
    if curves:
        sections.append(curves_section(curves))
    return page(title, sections, note)
