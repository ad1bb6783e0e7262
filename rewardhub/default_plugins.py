"""The built-in plugins: modules registered through the same hooks as any third party."""

from __future__ import annotations

DEFAULT_PLUGINS: tuple[str, ...] = (
    "rewardhub.sources.basic",
    "rewardhub.sources.python",
    "rewardhub.sources.rules",
    "rewardhub.sources.policy",
    "rewardhub.aggregate.scalarize",
    "rewardhub.aggregate.normalize",
)
