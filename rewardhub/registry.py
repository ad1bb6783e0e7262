"""Typed registries handed to the ``register_*`` hooks."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from rewardhub.aggregate.base import Aggregator, Normalizer
from rewardhub.errors import DuplicateNameError, PluginError, UnknownTypeError
from rewardhub.redteam.exploit import Exploit
from rewardhub.source import RewardSource

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → class, remembering which plugin registered each name."""

    kind: str = "type"
    name_attr: str = "type"
    base: type[Any] = object

    def __init__(self) -> None:
        self._items: dict[str, type[T]] = {}
        self._owners: dict[str, str] = {}
        self.current_plugin = "<direct>"

    def add(self, cls: type[T], name: str | None = None) -> None:
        """Register ``cls`` under ``name`` (default: its ``type``/``method`` attribute)."""
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise PluginError(
                f"plugin {self.current_plugin!r} tried to register {cls!r} as a {self.kind}, "
                f"but it is not a subclass of {self.base.__name__}"
            )
        key = name or getattr(cls, self.name_attr, "")
        if not key:
            raise PluginError(
                f"plugin {self.current_plugin!r} registered {cls.__name__} without a name: "
                f"set the class attribute {self.name_attr!r}"
            )
        if key in self._items and self._items[key] is not cls:
            raise DuplicateNameError(
                f"{self.kind} {key!r} is registered twice: by plugin {self._owners[key]!r} "
                f"({_qualname(self._items[key])}) and by plugin {self.current_plugin!r} "
                f"({_qualname(cls)}). Disable one with REWARDHUB_DISABLE_PLUGINS."
            )
        self._items[key] = cls
        self._owners[key] = self.current_plugin

    def get(self, name: str, path: str = "") -> type[T]:
        """The class registered as ``name``; an unknown name lists close matches."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownTypeError(
                f"unknown {self.kind} {name!r}.{hint} Installed: {', '.join(sorted(self._items))}",
                path,
            ) from None

    def owner(self, name: str) -> str:
        return self._owners[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, type[T]]]:
        yield from sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


def _qualname(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class SourceRegistry(Registry[RewardSource]):
    kind = "source type"
    name_attr = "type"
    base = RewardSource


class AggregatorRegistry(Registry[Aggregator]):
    kind = "aggregator"
    name_attr = "method"
    base = Aggregator


class NormalizerRegistry(Registry[Normalizer]):
    kind = "normalizer"
    name_attr = "method"
    base = Normalizer


class ExploitRegistry(Registry[Exploit]):
    """Exploit classes for ``rewardhub redteam``, by ``name``; each must cite its source."""

    kind = "exploit class"
    name_attr = "name"
    base = Exploit

    def add(self, cls: type[Exploit], name: str | None = None) -> None:
        if isinstance(cls, type) and issubclass(cls, Exploit):
            missing = [a for a in ("description", "source") if not getattr(cls, a, "")]
            if cls.family not in ("text", "judge", "code"):
                missing.append("a family (text, judge or code)")
            if missing:
                raise PluginError(
                    f"plugin {self.current_plugin!r} registered exploit class "
                    f"{_qualname(cls)} without {', '.join(missing)}: set the class attributes "
                    "description, source (the paper or incident it comes from) and family"
                )
        super().add(cls, name)
