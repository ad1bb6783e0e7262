"""OpenEnv (``openenv-core``, built against 0.3.0): rubrics as a source, a pipeline as a rubric.

- ``openenv-rubric`` source: an OpenEnv ``Rubric`` named by import path is called as
  ``rubric(action, observation)`` per sample; its output is the ``total`` objective and each
  named sub-rubric listed in ``components`` (a path of ``rubric.named_rubrics()``) another one,
  read from its ``last_score``. Sync and async rubrics both work (a coroutine is awaited).
- :func:`pipeline_rubric`: a rewardhub pipeline as an OpenEnv ``Rubric`` whose named
  sub-rubrics (``objectives.<name>``) hold each objective's value after every call.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub.bridges._common import (
    BridgeSource,
    PipelineBridge,
    check_objectives,
    failure,
    framework,
    instance_of,
    number,
)
from rewardhub.bridges._openenv_args import PROMPT_KEY, REFERENCE_KEY
from rewardhub.bridges._openenv_args import to_sample as to_sample
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Row, Scores
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.adapters._common import SpecLike
    from rewardhub.hub import Hub


class OpenEnvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rubric: str = Field(
        description="'module:name' or 'file.py:name' of a Rubric instance, a Rubric subclass "
        "(built with `kwargs`) or a function returning a Rubric"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="to build the rubric")
    total: str | None = Field(
        "reward", description="the objective of the rubric's own output (null: leave it out)"
    )
    components: dict[str, str] = Field(
        default_factory=dict,
        description="objective → dotted path of a named sub-rubric (rubric.named_rubrics()) "
        "whose last_score becomes that objective",
    )
    skipped_value: float = Field(
        0.0,
        description="the value of a listed sub-rubric that did not run on a sample because a "
        "container stopped early (Sequential, Gate): what the container itself gives then",
    )
    action: str | None = Field(
        None,
        description="'module:Class' of the Action, built as Class(**{action_field: completion}); "
        "null: the action is the completion text",
    )
    action_field: str = Field("message", description="the Action field holding the completion")
    observation: str | None = Field(
        None,
        description="'module:Class' of the Observation (null: openenv's Observation); built "
        "with done=True and metadata {prompt, reference, **sample.metadata}",
    )

    @model_validator(mode="after")
    def _some_objective(self) -> OpenEnvConfig:
        check_objectives(self.total, list(self.components), "total", "components")
        return self


class OpenEnvRubric(BridgeSource):
    """An OpenEnv rubric (openenv-core): its output and named sub-rubrics as objectives."""

    type = "openenv-rubric"
    Config = OpenEnvConfig
    extra = "openenv"
    ref_field = "rubric"

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (*([config.total] if config.total else []), *config.components)

    def build(self) -> Any:
        from openenv.core.rubrics import Rubric

        ref = self.config.rubric
        where = f"{self.type} source: rubric"
        obj = instance_of(
            self.load(ref, "rubric"), Rubric, self.config.kwargs, where, ref, "a Rubric"
        )
        for name, path in self.config.components.items():
            try:
                obj.get_rubric(path)
            except KeyError:
                known = [n for n, _ in obj.named_rubrics()]
                raise SourceError(
                    f"{self.type} source: components.{name}: no sub-rubric {path!r}; the "
                    f"rubric has {known}"
                ) from None
        action = self.load(self.config.action, "action") if self.config.action else None
        observation = (
            self.load(self.config.observation, "observation") if self.config.observation else None
        )
        return obj, action, observation

    def inputs(self, sample: Sample) -> tuple[Any, Any]:
        """The (action, observation) OpenEnv's rubric is called with for ``sample``."""
        return self._inputs()(sample)

    def _inputs(self) -> Callable[[Sample], tuple[Any, Any]]:
        from openenv.core.env_server.types import Observation

        _, action_cls, observation_cls = self.built
        make_observation = observation_cls or Observation
        field = self.config.action_field

        def inputs(sample: Sample) -> tuple[Any, Any]:
            action = sample.completion
            if action_cls is not None:
                action = action_cls(**{field: action})
            return action, make_observation(done=True, metadata=observation_metadata(sample))

        return inputs

    def score(self, samples: list[Sample]) -> Scores:
        # sync: OpenEnv's containers run plain calls faster outside an event loop, and an
        # async rubric (an LLM judge) still runs, each call awaited on its own loop
        from rewardhub.engine import run_sync

        rubric = self.built[0]
        parts = [rubric.get_rubric(path) for path in self.config.components.values()]
        inputs = self._inputs()
        rows: list[Row] = []
        # one sample at a time: a rubric keeps each sub-rubric's last_score on itself
        for sample in samples:
            for part in parts:  # a container that stops early leaves the rest unrun
                object.__setattr__(part, "last_score", None)
            try:
                out = rubric(*inputs(sample))
                if type(out) is not float and inspect.isawaitable(out):
                    out = run_sync(_awaited(out))
            except Exception as exc:
                rows.append(failure("the openenv rubric", exc))
                continue
            rows.append(self._row(out, parts))
        return rows

    def _row(self, out: Any, parts: list[Any]) -> Row:
        cells = (
            [out, *(part.last_score for part in parts)]
            if self.config.total
            else [part.last_score for part in parts]
        )
        if all(type(c) is float and math.isfinite(c) for c in cells):
            return cells  # the common case, checked in one pass
        row: list[float | None] = []
        if self.config.total:
            value = number(out)
            if value is None:
                return Abstain(f"the openenv rubric returned {out!r:.60}, not a finite number")
            row.append(value)
        for name, part in zip(self.config.components, parts):
            if part.last_score is None:
                row.append(self.config.skipped_value)
                continue
            value = number(part.last_score)
            if value is None:
                return Abstain(f"sub-rubric {name!r} scored {part.last_score!r:.60}")
            row.append(value)
        return row


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def pipeline_rubric(
    spec: SpecLike = None,
    *,
    hub: Hub | None = None,
    action_field: str = "message",
    unscorable: float | None = None,
) -> Any:
    """A rewardhub pipeline as an OpenEnv ``Rubric`` (``env.rubric = pipeline_rubric(...)``).

    Called as ``rubric(action, observation)``, it returns the pipeline's total; its named
    sub-rubrics ``objectives.<objective>`` hold each objective's value in ``last_score``
    (None when the cell has none). An unscorable sample returns ``unscorable`` (default None:
    OpenEnv's "no reward", as in ``Observation.reward``), never a made-up 0."""
    framework("openenv", "pipeline_rubric")
    from rewardhub.bridges._openenv_rubric import PipelineRubric

    bridge = PipelineBridge(spec, hub, "an OpenEnv rubric")
    return PipelineRubric(bridge, action_field=action_field, unscorable=unscorable)


def observation_metadata(sample: Sample) -> dict[str, Any]:
    """The observation metadata :func:`to_sample` reads ``sample`` back from (a new dict)."""
    return {PROMPT_KEY: sample.prompt, REFERENCE_KEY: sample.reference, **sample.metadata}


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(OpenEnvRubric)
