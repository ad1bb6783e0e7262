"""rewardhub: a plugin-based hub of reward sources and judges for multi-objective alignment.

Everything a user imports lives here; see ``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardhub._lazy import lazy_getattr
from rewardhub.errors import (
    AbstainError,
    AggregationError,
    DuplicateNameError,
    InputError,
    MissingExtraError,
    PluginError,
    RewardHubError,
    SourceError,
    SpecError,
    UnknownTypeError,
)
from rewardhub.types import Objective, Outcome, RewardBatch, Sample, ScoreResult

if TYPE_CHECKING:
    from rewardhub.aggregate.base import Aggregation, Aggregator, Context, Normalizer
    from rewardhub.class_plugins import plugin_with
    from rewardhub.hookspecs import hookimpl, hookspec
    from rewardhub.hub import Hub, PluginWarning
    from rewardhub.pipeline import Pipeline
    from rewardhub.redteam.exploit import Attack, Exploit
    from rewardhub.registry import (
        AggregatorRegistry,
        ExploitRegistry,
        NormalizerRegistry,
        SourceRegistry,
    )
    from rewardhub.source import (
        Abstain,
        AbstainNow,
        Fail,
        FailNow,
        NotApplicable,
        RewardSource,
        Scores,
        ScoresWithStd,
        current_deadline,
        reward_source,
        time_left,
    )
    from rewardhub.spec import PipelineSpec, load_spec

__version__ = "0.1.0"

# Imported on first use so that `import rewardhub` costs numpy and little else: the first
# pydantic model class alone costs ~0.1 s, and asyncio, the engine and the plugin manager are
# only needed once a source is defined or a pipeline is built.
_LAZY = {
    "Aggregation": "rewardhub.aggregate.base",
    "Aggregator": "rewardhub.aggregate.base",
    "Context": "rewardhub.aggregate.base",
    "Normalizer": "rewardhub.aggregate.base",
    "hookimpl": "rewardhub.hookspecs",
    "hookspec": "rewardhub.hookspecs",
    "AggregatorRegistry": "rewardhub.registry",
    "ExploitRegistry": "rewardhub.registry",
    "Attack": "rewardhub.redteam.exploit",
    "Exploit": "rewardhub.redteam.exploit",
    "NormalizerRegistry": "rewardhub.registry",
    "SourceRegistry": "rewardhub.registry",
    "Abstain": "rewardhub.source",
    "AbstainNow": "rewardhub.source",
    "Fail": "rewardhub.source",
    "FailNow": "rewardhub.source",
    "NotApplicable": "rewardhub.source",
    "RewardSource": "rewardhub.source",
    "Scores": "rewardhub.source",
    "ScoresWithStd": "rewardhub.source",
    "reward_source": "rewardhub.source",
    "current_deadline": "rewardhub.source",
    "time_left": "rewardhub.source",
    "plugin_with": "rewardhub.class_plugins",
    "Hub": "rewardhub.hub",
    "PluginWarning": "rewardhub.hub",
    "Pipeline": "rewardhub.pipeline",
    "PipelineSpec": "rewardhub.spec",
    "load_spec": "rewardhub.spec",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Abstain",
    "AbstainError",
    "AbstainNow",
    "Aggregation",
    "AggregationError",
    "Aggregator",
    "AggregatorRegistry",
    "Attack",
    "Context",
    "DuplicateNameError",
    "Exploit",
    "ExploitRegistry",
    "Fail",
    "FailNow",
    "Hub",
    "InputError",
    "MissingExtraError",
    "Normalizer",
    "NormalizerRegistry",
    "NotApplicable",
    "Objective",
    "Outcome",
    "Pipeline",
    "PipelineSpec",
    "PluginError",
    "PluginWarning",
    "RewardBatch",
    "RewardHubError",
    "RewardSource",
    "Sample",
    "ScoreResult",
    "Scores",
    "ScoresWithStd",
    "SourceError",
    "SourceRegistry",
    "SpecError",
    "UnknownTypeError",
    "__version__",
    "current_deadline",
    "hookimpl",
    "hookspec",
    "load_spec",
    "plugin_with",
    "reward_source",
    "time_left",
]
