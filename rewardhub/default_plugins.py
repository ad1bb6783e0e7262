"""The built-in plugins: modules registered through the same hooks as any third party."""

from __future__ import annotations

DEFAULT_PLUGINS: tuple[str, ...] = (
    "rewardhub.sources.basic",
    "rewardhub.sources.python",
    "rewardhub.sources.rules",
    "rewardhub.sources.policy",
    "rewardhub.sources.math",
    "rewardhub.sources.code",
    "rewardhub.sources.hf_classifier",
    "rewardhub.sources.embedding",
    "rewardhub.sources.judge",
    "rewardhub.sources.openai_judge",
    "rewardhub.sources.ensemble",
    "rewardhub.aggregate.scalarize",
    "rewardhub.aggregate.normalize",
    "rewardhub.aggregate.lexicographic",
    "rewardhub.aggregate.robust",
    "rewardhub.aggregate.pareto",
    "rewardhub.aggregate.uncertainty",
    "rewardhub.aggregate.gates",
    "rewardhub.commands.pareto",
    "rewardhub.commands.new_plugin",
    "rewardhub.commands.serve",
    "rewardhub.sources.remote",
    "rewardhub.commands.train",
    "rewardhub.commands.steer",
    "rewardhub.bridges.openenv",
    "rewardhub.bridges.verifiers",
    "rewardhub.bridges.eval_protocol",
    "rewardhub.bridges.openjudge",
)
