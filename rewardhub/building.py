"""The Hub whose pipeline is being built: where nested parts find their types.

A part that builds other parts — a gate's base aggregator, an ensemble's member sources —
takes their classes from the registries of the Hub building it, so plugin types passed to
``rh.Hub(plugins=[...])`` work there too and entry points are not loaded again. The Pipeline
sets it; code building such a part by hand wraps it in ``with building_with(hub):``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from rewardhub.errors import RewardHubError

if TYPE_CHECKING:
    from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, SourceRegistry


class Registries(Protocol):
    """What a :class:`~rewardhub.hub.Hub` offers to the parts it builds."""

    @property
    def sources(self) -> SourceRegistry: ...
    @property
    def aggregators(self) -> AggregatorRegistry: ...
    @property
    def normalizers(self) -> NormalizerRegistry: ...


_current: contextvars.ContextVar[Registries | None] = contextvars.ContextVar(
    "rewardhub_building", default=None
)


@contextmanager
def building_with(hub: Registries) -> Iterator[None]:
    """Parts built inside this block take nested types from ``hub``'s registries."""
    token = _current.set(hub)
    try:
        yield
    finally:
        _current.reset(token)


def current(what: str) -> Registries:
    """The registries of the Hub building ``what``; a clear error outside one."""
    hub = _current.get()
    if hub is None:
        raise RewardHubError(
            f"{what} builds other registered types, so it needs the Hub they come from: build "
            "it through a Pipeline (rh.Pipeline.from_spec), or by hand inside "
            "`with rewardhub.building.building_with(rh.Hub()):`"
        )
    return hub
