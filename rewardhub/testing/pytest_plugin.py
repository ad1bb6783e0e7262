"""The pytest plugin of the kit (entry point ``pytest11``): fixtures for plugin tests.

Only this module imports pytest, so ``rewardhub.testing`` works without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline
from rewardhub.testing.samples import make_samples
from rewardhub.types import Sample


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


@pytest.fixture(name="make_samples")
def _make_samples_fixture() -> Callable[..., list[Sample]]:
    """:func:`make_samples` as a fixture: ``make_samples(n, group_size=2, seed=0)``."""
    return make_samples
