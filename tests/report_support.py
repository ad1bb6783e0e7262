"""Helpers of the report tests: a scored file with every outcome, an eval result, and reading
the report's tables back from its HTML."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import rewardhub as rh
from rewardhub.evaluate import PreferencePair, evaluate


def graded(sample: rh.Sample) -> Any:
    """'crash' fails the check, 'down' cannot be scored, else the number of words."""
    if "crash" in sample.completion:
        return rh.Fail("the answer crashed the checker")
    if "down" in sample.completion:
        return rh.Abstain("judge did not answer")
    return float(len(sample.completion.split()))


SPEC: dict[str, Any] = {
    "objectives": ["brevity", "words"],
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 30, "unit": "chars"}},
        {
            "id": "w",
            "type": "python",
            "config": {"function": f"{__name__}:graded", "objectives": ["words"]},
            "when": "metadata.kind != skip",
        },
    ],
    "normalize": "none",
    "aggregate": {"method": "maxmin"},
}

TEXTS = ["a short one", "a much longer answer with many words in it", "crash", "down", "ok"]


def write_scored(path: Path, n: int = 60) -> Path:
    samples = [
        rh.Sample("q", TEXTS[i % len(TEXTS)] + " x" * (i % 7), metadata={"kind": "skip"})
        if i % 11 == 0
        else rh.Sample("q", TEXTS[i % len(TEXTS)] + " x" * (i % 7))
        for i in range(n)
    ]
    with rh.Pipeline(SPEC, hub=rh.Hub(entry_points=False)) as p:
        res = p.score(samples)
    with path.open("w") as fh:
        for s, rec in zip(samples, res.to_records()):
            fh.write(json.dumps({**s.to_dict(), **rec}) + "\n")
    return path


def write_eval(path: Path) -> dict[str, Any]:
    pairs = [
        PreferencePair(f"q{i}", TEXTS[i % 5] + " yes" * (i % 3), TEXTS[(i + 1) % 5], "hep-go")
        for i in range(40)
    ]
    with rh.Pipeline(SPEC, hub=rh.Hub(entry_points=False)) as p:
        doc = evaluate(p, pairs, resamples=300).to_dict()
    path.write_text(json.dumps(doc))
    return doc


class Tables(HTMLParser):
    """``{data-key: [[cell, ...], ...]}`` of a report, a cell being its exact ``data-value``
    (a float, or None for '–') or, for a label cell, its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[Any]]] = {}
        self._key: str | None = None
        self._cell: list[Any] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._key = a.get("data-key")
            self.tables[self._key or ""] = []
        elif tag == "tr" and self._key is not None:
            self.tables[self._key].append([])
        elif tag == "td" and self._key is not None:
            value = a.get("data-value")
            self._cell = ["num", None if value in ("", None) else float(value)]
            if "data-value" not in a:
                self._cell = ["text", None]
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self._cell[0] == "text":
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._key is not None:
            kind, value = self._cell
            self.tables[self._key][-1].append("".join(self._text) if kind == "text" else value)
            self._cell = None
        elif tag == "table":
            self._key = None


def rows(html: str, key: str) -> list[list[Any]]:
    return [r for r in Tables(html).tables[key] if r]
