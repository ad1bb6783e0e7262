"""A test kit for plugin authors (also a pytest plugin, loaded through ``pytest11``).

- :func:`plugin_with` wraps classes into a plugin object for ``Hub(plugins=[...])``;
- :func:`check_source` runs the conformance checks every source should pass;
- fixtures ``rewardhub_hub`` (a fresh Hub) and ``make_pipeline`` (spec dict → Pipeline,
  closed after the test).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from rewardhub.aggregate.base import Aggregator, Normalizer
from rewardhub.engine import _to_rows
from rewardhub.hookspecs import hookimpl
from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, SourceRegistry
from rewardhub.source import RewardSource
from rewardhub.types import Sample

DEFAULT_SAMPLES: tuple[Sample, ...] = (
    Sample(prompt="Say hi", completion="hi there"),
    Sample(prompt="2+2?", completion="The answer is \\boxed{4}.", reference="4"),
    Sample(prompt=[{"role": "user", "content": "Tell me a joke"}], completion=""),
    Sample(prompt="x", completion="ünïcödé ✓ " * 50, metadata={"group": "g1"}),
)


class _Plugin:
    """A plugin object registering the classes it was given (see :func:`plugin_with`)."""

    def __init__(self, classes: Sequence[type[Any]], name: str) -> None:
        self.classes = list(classes)
        self.__name__ = name

    @hookimpl
    def register_sources(self, registry: SourceRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, RewardSource):
                registry.add(cls)

    @hookimpl
    def register_aggregators(self, registry: AggregatorRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, Aggregator):
                registry.add(cls)

    @hookimpl
    def register_normalizers(self, registry: NormalizerRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, Normalizer):
                registry.add(cls)


def plugin_with(*classes: type[Any], name: str = "test-plugin") -> object:
    """A plugin that registers ``classes`` (sources, aggregators, normalizers)."""
    return _Plugin(classes, name)


def _rows(source: RewardSource, samples: list[Sample]) -> np.ndarray:
    k = len(source.output_objectives)
    values, _, _ = _to_rows(source.score(samples), len(samples), k, source.fail_values())
    return values


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def check_source(
    cls: type[RewardSource],
    config: Mapping[str, Any] | None = None,
    samples: Sequence[Sample] = DEFAULT_SAMPLES,
) -> None:
    """Assert that ``cls`` behaves as every rewardhub source must.

    Checks: a type name and unique objectives; a pydantic Config; the output shape
    (n × k, finite or NaN); an empty batch; ``score(a + b) == score(a) + score(b)``;
    determinism; a pickled copy scores the same.
    """
    assert cls.type, f"{cls.__name__} has no `type` name"
    source = cls(dict(config or {}))
    objectives = source.output_objectives
    assert objectives, f"{cls.type}: objectives_for(config) returned nothing"
    assert len(set(objectives)) == len(objectives), f"{cls.type}: duplicate objectives {objectives}"
    batch = list(samples)
    values = _rows(source, batch)
    assert not np.isinf(values).any(), f"{cls.type}: returned inf"
    assert _rows(source, []).shape == (0, len(objectives)), f"{cls.type}: empty batch"
    half = len(batch) // 2
    split = np.concatenate([_rows(source, batch[:half]), _rows(source, batch[half:])])
    assert _same(values, split), f"{cls.type}: score(a + b) != score(a) + score(b)"
    assert _same(values, _rows(source, batch)), f"{cls.type}: not deterministic"
    clone = pickle.loads(pickle.dumps(source))
    assert _same(values, _rows(clone, batch)), f"{cls.type}: a pickled copy scores differently"
    source.close()
    clone.close()


@pytest.fixture
def rewardhub_hub() -> Hub:
    """A fresh Hub with the built-ins and the installed plugins."""
    return Hub()


@pytest.fixture
def make_pipeline(rewardhub_hub: Hub) -> Iterator[Callable[..., Pipeline]]:
    """Build pipelines from spec dicts; each is closed after the test."""
    made: list[Pipeline] = []

    def make(spec: Mapping[str, Any], hub: Hub | None = None) -> Pipeline:
        pipe = Pipeline(spec, hub=hub or rewardhub_hub)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.close()
