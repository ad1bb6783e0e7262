"""rewardhub: a plugin-based hub of reward sources and judges for multi-objective alignment.

Everything a user imports lives here; see ``__all__``.
"""

from __future__ import annotations

from rewardhub.aggregate.base import Aggregation, Aggregator, Context, Normalizer
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
from rewardhub.hookspecs import hookimpl, hookspec
from rewardhub.hub import Hub, PluginWarning
from rewardhub.pipeline import Pipeline
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, SourceRegistry
from rewardhub.source import Abstain, AbstainNow, RewardSource, Scores, ScoresWithStd, reward_source
from rewardhub.spec import PipelineSpec, load_spec
from rewardhub.types import Objective, RewardBatch, Sample, ScoreResult

__version__ = "0.1.0"

__all__ = [
    "Abstain",
    "AbstainError",
    "AbstainNow",
    "Aggregation",
    "AggregationError",
    "Aggregator",
    "AggregatorRegistry",
    "Context",
    "DuplicateNameError",
    "Hub",
    "InputError",
    "MissingExtraError",
    "Normalizer",
    "NormalizerRegistry",
    "Objective",
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
    "hookimpl",
    "hookspec",
    "load_spec",
    "reward_source",
]
