"""Plugin objects made from classes, so ``Hub(plugins=[MySource])`` registers them directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardhub.aggregate.base import Aggregator, Normalizer
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, SourceRegistry
from rewardhub.source import RewardSource

_KINDS = (RewardSource, Aggregator, Normalizer)


class ClassPlugin:
    """A plugin object registering the classes it was given (see :func:`plugin_with`)."""

    def __init__(self, classes: Sequence[type[Any]], name: str) -> None:
        for cls in classes:
            if not is_registrable(cls):
                raise TypeError(
                    f"plugin_with({cls!r}): pass RewardSource, Aggregator or Normalizer "
                    "subclasses (a function decorated with @rh.reward_source is one)"
                )
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


def is_registrable(obj: object) -> bool:
    """True for a source, aggregator or normalizer class (what a hub registers by itself)."""
    return isinstance(obj, type) and issubclass(obj, _KINDS)


def plugin_with(*classes: type[Any], name: str = "classes") -> ClassPlugin:
    """One plugin, named ``name``, that registers ``classes`` (sources, aggregators,
    normalizers). ``Hub(plugins=[A, B])`` does the same with one plugin per class."""
    return ClassPlugin(classes, name)


def as_plugin(obj: object) -> tuple[object, str]:
    """``obj`` as a pluggy plugin and the name ``rewardhub plugins`` shows for it."""
    if is_registrable(obj):
        cls: type[Any] = obj  # type: ignore[assignment]
        kind = getattr(cls, "type", None) or getattr(cls, "method", None) or cls.__name__
        name = f"{cls.__module__}:{kind}"
        return ClassPlugin([cls], name), name
    name = getattr(obj, "__name__", None) or f"{type(obj).__name__}@{id(obj):x}"
    return obj, name
