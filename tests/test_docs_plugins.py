"""Every python block of docs/plugins.md is named and runs in a test, as written."""

from __future__ import annotations

import math
import re
import sys
import types

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.testing import check_aggregator, check_source
from tests.conftest import ROOT, doc_example

#: each named block of docs/plugins.md and the test that runs it
TESTED = {
    "tutorial": "tests/test_testing_kit.py::test_plugins_md_tutorial_and_testing_blocks_run",
    "length": "tests/test_testing_kit.py::test_plugins_md_tutorial_and_testing_blocks_run",
    "testing": "tests/test_testing_kit.py::test_plugins_md_tutorial_and_testing_blocks_run",
    "has_answer": "test_has_answer_block",
    "registering": "test_registering_block",
    "median": "test_median_block",
}


def _importable(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType) -> types.ModuleType:
    """Put a doc block's module in sys.modules, so the kit's pickling check finds its classes."""
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_every_python_block_is_named_and_tested() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"(?:<!-- example: ([\w-]+) -->\s*)?```python\n", text)
    unnamed = blocks.count("")
    assert not unnamed, (
        f"docs/plugins.md has {unnamed} python block(s) without a '<!-- example: name -->' "
        "marker: name each one and run it in a test (add it to TESTED)"
    )
    assert sorted(blocks) == sorted(TESTED), "a named block is not run by any test: add it"


def test_has_answer_block(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _importable(monkeypatch, doc_example("plugins.md", "has_answer"))
    source_cls = block.has_answer
    assert issubclass(source_cls, rh.RewardSource) and source_cls.type == "has_answer"
    check_source(source_cls)
    samples = [
        rh.Sample(prompt="2+2?", completion="so \\boxed{4}"),
        rh.Sample(prompt="2+2?", completion="4, boxed"),  # says "boxed" without the markup
    ]
    assert source_cls().score(samples) == [[1.0], [0.0]]


def test_registering_block() -> None:
    module = doc_example("plugins.md", "length")
    doc_example("plugins.md", "registering", into=module)
    hub = rh.Hub(plugins=[module], entry_points=False)
    assert hub.sources.get("my-length") is module.Length
    assert hub.sources.owner("my-length") == "doc_example_length"
    spec = {"sources": [{"type": "my-length", "config": {"target": 4}}]}
    with rh.Pipeline(spec, hub=hub) as pipe:
        vector = pipe.vector([rh.Sample(prompt="p", completion="abcdef")])
    assert vector.values.tolist() == [[-0.5]]


def test_median_block(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _importable(monkeypatch, doc_example("plugins.md", "median"))
    check_aggregator(block.Median)
    check_aggregator(block.Median, {"shift": 1.5})
    hub = rh.Hub(plugins=[block], entry_points=False)
    assert hub.aggregators.owner("median") == "doc_example_median"

    # against an independent median of each row's present values, on random abstentions
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 5))
    values[rng.random(values.shape) < 0.3] = math.nan
    values[:3] = math.nan  # rows where every objective abstained
    ctx = rh.Context(objectives=tuple("abcde"))
    total = block.Median({"shift": 0.25}, ctx.objectives).aggregate(values, ctx).total
    for row, got in zip(values, total):
        present = sorted(x for x in row if not math.isnan(x))
        if not present:
            assert math.isnan(got)
            continue
        mid = len(present) // 2
        want = present[mid] if len(present) % 2 else (present[mid - 1] + present[mid]) / 2
        assert got == pytest.approx(want + 0.25, abs=1e-12)

    spec = {
        "sources": [
            {"type": "length", "config": {"target": 4}},
            {"type": "keywords", "config": {"required": ["yes"]}},
        ],
        "aggregate": {"method": "median", "shift": 1.0},
    }
    with rh.Pipeline(spec, hub=rh.Hub(plugins=[block])) as pipe:
        res = pipe.score(
            [rh.Sample(prompt="p", completion="yes!"), rh.Sample(prompt="p", completion="no")]
        )
    want = np.median(res.vector.values, axis=1) + 1.0  # two objectives: the median is the mean
    assert res.total.tolist() == pytest.approx(want.tolist())
