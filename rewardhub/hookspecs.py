"""The pluggy hook specifications. Hooks only register things, each with a typed registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from rewardhub.registry import (
        AggregatorRegistry,
        ExploitRegistry,
        NormalizerRegistry,
        SourceRegistry,
    )

hookspec = pluggy.HookspecMarker("rewardhub")
hookimpl = pluggy.HookimplMarker("rewardhub")


@hookspec
def register_sources(registry: SourceRegistry) -> None:
    """Register RewardSource classes with ``registry.add(cls)``."""


@hookspec
def register_aggregators(registry: AggregatorRegistry) -> None:
    """Register Aggregator classes with ``registry.add(cls)``."""


@hookspec
def register_normalizers(registry: NormalizerRegistry) -> None:
    """Register Normalizer classes with ``registry.add(cls)``."""


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add sub-commands to the ``rewardhub`` command line (``@cli.command()``)."""


@hookspec
def register_exploits(registry: ExploitRegistry) -> None:
    """Register exploit classes for ``rewardhub redteam`` with ``registry.add(cls)``."""
