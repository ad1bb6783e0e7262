"""The built-in exploit classes, registered through ``register_exploits`` like a plugin's."""

from __future__ import annotations

from rewardhub.hookspecs import hookimpl
from rewardhub.redteam.code import CODE_EXPLOITS
from rewardhub.redteam.judge import JUDGE_EXPLOITS
from rewardhub.redteam.text import TEXT_EXPLOITS
from rewardhub.registry import ExploitRegistry


@hookimpl
def register_exploits(registry: ExploitRegistry) -> None:
    for cls in (*TEXT_EXPLOITS, *JUDGE_EXPLOITS, *CODE_EXPLOITS):
        registry.add(cls)
