"""Hub: the plugin manager, its registries and entry-point loading."""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from rewardhub import _trace, hookspecs
from rewardhub.class_plugins import as_plugin
from rewardhub.default_plugins import DEFAULT_PLUGINS
from rewardhub.errors import DuplicateNameError, PluginError
from rewardhub.registry import (
    AggregatorRegistry,
    ExploitRegistry,
    NormalizerRegistry,
    Registry,
    SourceRegistry,
)

ENTRY_POINT_GROUP = "rewardhub"


class PluginWarning(UserWarning):
    """A plugin could not be loaded or a plugin setting names nothing installed."""


@dataclass
class PluginInfo:
    """What ``rewardhub plugins`` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    sources: list[str] = field(default_factory=list)
    aggregators: list[str] = field(default_factory=list)
    normalizers: list[str] = field(default_factory=list)
    exploits: list[str] = field(default_factory=list)
    error: str | None = None


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


class Hub:
    """A fresh plugin manager with the built-ins, the installed plugins and ``plugins``.

    ``plugins`` holds plugin modules or objects, and also source, aggregator and normalizer
    classes (a function decorated with ``@rh.reward_source`` is one), each registered as its
    own plugin: ``rh.Hub(plugins=[has_answer])``.

    Every ``Hub()`` is independent: nothing is global, so tests build one each.
    ``REWARDHUB_LOAD_PLUGINS`` (unset: all installed plugins, empty: none, ``a,b``: only those
    distributions) and ``REWARDHUB_DISABLE_PLUGINS`` choose the installed plugins;
    ``REWARDHUB_TRACE=1`` prints each registration (and, in the engine, each source's time
    per call) to stderr.
    """

    def __init__(
        self,
        plugins: Sequence[object] = (),
        *,
        builtins: bool = True,
        entry_points: bool = True,
    ) -> None:
        self.pm = pluggy.PluginManager("rewardhub")
        self.pm.add_hookspecs(hookspecs)
        if _trace.enabled():
            _trace.monitor(self.pm)
        self._info: dict[str, PluginInfo] = {}
        for blocked in _env_list("REWARDHUB_DISABLE_PLUGINS") or []:
            self.pm.set_blocked(blocked)
        if builtins:
            for modname in DEFAULT_PLUGINS:
                self._register(importlib.import_module(modname), modname, builtin=True)
        if entry_points:
            self._load_entry_points()
        for obj in plugins:
            plugin, name = as_plugin(obj)
            self._register(plugin, name, strict=True)
        self._validate_hooks()
        self.sources = SourceRegistry()
        self.aggregators = AggregatorRegistry()
        self.normalizers = NormalizerRegistry()
        self.exploits = ExploitRegistry()
        self._call_each("register_sources", self.sources, "sources")
        self._call_each("register_aggregators", self.aggregators, "aggregators")
        self._call_each("register_normalizers", self.normalizers, "normalizers")
        self._call_each("register_exploits", self.exploits, "exploits")

    # -- loading -----------------------------------------------------------------------------

    def _register(
        self,
        plugin: object,
        name: str,
        *,
        builtin: bool = False,
        dist: metadata.Distribution | None = None,
        strict: bool = False,
    ) -> None:
        info = PluginInfo(
            name=name,
            builtin=builtin,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
        )
        if self.pm.is_blocked(name) or (
            info.distribution and self.pm.is_blocked(info.distribution)
        ):
            return
        if self.pm.is_registered(plugin):
            return
        self.pm.register(plugin, name=name)
        self._info[name] = info

    def _load_entry_points(self) -> None:
        wanted = _env_list("REWARDHUB_LOAD_PLUGINS")
        found: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else ep.name
            found.add(_norm(dist_name))
            if wanted is not None and _norm(dist_name) not in {_norm(w) for w in wanted}:
                continue
            if self.pm.is_blocked(ep.name) or self.pm.is_blocked(dist_name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the hub down
                self._broken(ep.name, f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}")
                self._info[ep.name].distribution = dist_name
                continue
            self._register(plugin, ep.name, dist=dist)
        for name in wanted or []:
            if _norm(name) not in found:
                warnings.warn(
                    f"REWARDHUB_LOAD_PLUGINS names {name!r}, but no installed distribution "
                    f"provides a rewardhub plugin by that name (installed: {sorted(found) or 'none'})",
                    PluginWarning,
                    stacklevel=3,
                )

    def _validate_hooks(self) -> None:
        """Fail loudly on a misspelt hook name instead of silently never calling it."""
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
                info = self._info.get(name)
                if info is None or info.distribution is None:
                    raise PluginError(f"plugin {name!r}: {exc}") from None
                self.pm.unregister(exc.plugin)
                self._broken(name, str(exc))

    def _broken(self, name: str, reason: str) -> None:
        info = self._info.setdefault(name, PluginInfo(name=name))
        info.error = reason
        warnings.warn(
            f"rewardhub plugin {name!r} was not loaded: {reason}", PluginWarning, stacklevel=4
        )

    def _call_each(self, hook_name: str, registry: Registry[Any], kind: str) -> None:
        """Call the hook once per plugin, so that one broken plugin cannot stop the rest and
        each registration is attributed to its plugin (the registry's ``current_plugin``)."""
        for name, call in self._per_plugin(hook_name):
            registry.current_plugin = name
            before = set(registry.names())
            try:
                call(registry=registry)
            except DuplicateNameError:
                raise
            except Exception as exc:
                for added in set(registry.names()) - before:
                    registry._items.pop(added)  # roll back a half-done registration
                if self._info.get(name, PluginInfo(name)).distribution is None:
                    # a built-in or a plugin passed in code: a bug to fix now, not to hide
                    raise PluginError(f"plugin {name!r} failed in {hook_name}: {exc}") from exc
                self._broken(name, f"{hook_name} raised {type(exc).__name__}: {exc}")
                continue
            info = self._info.setdefault(name, PluginInfo(name=name))
            getattr(info, kind).extend(sorted(set(registry.names()) - before))
        registry.current_plugin = "<direct>"

    def _per_plugin(self, hook_name: str) -> Iterator[tuple[str, pluggy.HookCaller]]:
        """(plugin name, a caller of the hook restricted to that plugin) in registration order.

        The calls go through pluggy, so hook wrappers and call monitoring (``REWARDHUB_TRACE``)
        see each of them; a plugin holding only wrappers wraps every plugin's call."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        plain: dict[str, object] = {}
        for impl in impls:
            if not (impl.hookwrapper or impl.wrapper):
                plain.setdefault(impl.plugin_name, impl.plugin)
        for name in plain:
            others = [p for n, p in plain.items() if n != name]
            yield name, self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def call_register_commands(self, cli: Any) -> None:
        """Let plugins add CLI commands; a failing plugin is reported, not fatal."""
        for name, call in self._per_plugin("register_commands"):
            try:
                call(cli=cli)
            except Exception as exc:
                self._broken(name, f"register_commands raised {exc!r}")

    # -- queries -----------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or broken, built-ins first."""
        return sorted(self._info.values(), key=lambda p: (not p.builtin, p.name))

    def __repr__(self) -> str:
        return (
            f"Hub(sources={self.sources.names()}, aggregators={self.aggregators.names()}, "
            f"normalizers={self.normalizers.names()})"
        )


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")
