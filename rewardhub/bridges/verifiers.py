"""verifiers (Prime Intellect, built against 0.4.0, ``verifiers.v1``): task rewards both ways.

In verifiers v1 a reward lives on a ``vf.Task``: ``@vf.reward`` methods (weighted, summed into
``trace.reward``) and ``@vf.metric`` methods (recorded, not summed), each called with the task
data and the rollout's ``Trace``; a ``TaskConfig`` may plug more by import path.

- ``verifiers`` source: a Task class named by import path scores each sample as a one-turn
  trace (the prompt, then the completion as the model's reply) with ``Task.score``; each
  reward and listed metric is an objective, and ``total`` the weighted sum. A scoring error
  (their ``TaskError``) or a reward left unscored (``None``) is *could not score*.
- :func:`pipeline_rewards`: a rewardhub pipeline as plugged verifiers functions: ``reward``
  (the total, a ``@vf.reward``) and ``metrics`` (one metric per objective); the per-objective
  details also go to ``trace.info["rewardhub"]``. An unscorable sample raises inside the
  scoring boundary, verifiers' own way to leave a reward unscored (``None``, with the error on
  the trace), never a made-up 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub.bridges._common import (
    BridgeSource,
    PipelineBridge,
    Scored,
    failure,
    framework,
    number,
    prompt_messages,
)
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Row, Scores
from rewardhub.sources.python import load_object
from rewardhub.spec import base_dir
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.adapters._common import SpecLike
    from rewardhub.hub import Hub

#: the trace.info key the pipeline's per-objective details are kept under
INFO_KEY = "rewardhub"


class VerifiersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(description="'module:Class' or 'file.py:Class' of a verifiers.v1 Task")
    task_config: dict[str, Any] = Field(
        default_factory=dict, description="the Task's TaskConfig (plugged rewards, judges, ...)"
    )
    reference_field: str | None = Field(
        "answer", description="the TaskData field that receives the sample's reference"
    )
    rewards: list[str] | None = Field(
        None,
        description="reward names to take as objectives (null: every @vf.reward of the task)",
    )
    metrics: list[str] = Field(default_factory=list, description="metric names as objectives")
    total: str | None = Field(
        "reward", description="the objective of trace.reward, the weighted sum (null: none)"
    )

    @model_validator(mode="after")
    def _distinct(self) -> VerifiersConfig:
        names = [*(self.rewards or []), *self.metrics, *([self.total] if self.total else [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"objective names {dupes} appear twice (rewards, metrics, total)")
        return self


def _task_class(ref: str) -> Any:
    import verifiers.v1 as vf

    try:
        cls = load_object(ref, base_dir.get())
    except Exception as exc:
        raise SourceError(f"verifiers source: task: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, vf.Task)):
        raise SourceError(f"verifiers source: task: {ref!r} is not a verifiers.v1 Task class")
    return cls


def _new_task(cls: Any, config: Any, data: Any = None) -> Any:
    return cls(data if data is not None else cls.data_type().model_construct(), config)


class Verifiers(BridgeSource):
    """A verifiers v1 Task's rewards and metrics (verifiers.v1), scored on one-turn traces."""

    type = "verifiers"
    Config = VerifiersConfig
    extra = "verifiers"
    ref_field = "task"

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        rewards = config.rewards
        if rewards is None:
            framework("verifiers", "the verifiers source")
            task_cls = _task_class(config.task)
            task = _new_task(task_cls, task_cls.config_type().model_validate(config.task_config))
            rewards = [fn.__name__ for fn in task.hooks("reward")]
        return (*([config.total] if config.total else []), *rewards, *config.metrics)

    def build(self) -> Any:
        cls = _task_class(self.config.task)
        try:
            config = cls.config_type().model_validate(self.config.task_config)
        except Exception as exc:
            raise SourceError(f"{self.type} source: task_config: {exc}") from None
        fields = cls.data_type().model_fields
        if self.config.reference_field and self.config.reference_field not in fields:
            raise SourceError(
                f"{self.type} source: reference_field: {cls.data_type().__name__} has no field "
                f"{self.config.reference_field!r} (fields: {sorted(fields)})"
            )
        return cls, config

    def trace_of(self, sample: Sample) -> tuple[Any, Any]:
        """The (task, trace) verifiers scores ``sample`` on: the sample's prompt as the task's
        prompt, its completion as the model's one reply."""
        return self._tracer()(sample)

    def _tracer(self) -> Callable[[Sample], tuple[Any, Any]]:
        import verifiers.v1 as vf
        from pydantic import TypeAdapter
        from verifiers.v1.graph import MessageNode
        from verifiers.v1.trace import AgentInfo, TraceTask

        cls, config = self.built
        data_type = cls.data_type()
        fields = data_type.model_fields
        reference_field = self.config.reference_field
        messages = TypeAdapter(list[vf.Message])
        agent = AgentInfo(config=vf.AgentConfig(), name="rewardhub", trainable=False)

        def trace_of(sample: Sample) -> tuple[Any, Any]:
            values = {k: v for k, v in sample.metadata.items() if k in fields}
            if reference_field and sample.reference is not None:
                values[reference_field] = sample.reference
            data = data_type(prompt=sample.prompt, **values)
            task = _new_task(cls, config, data)
            chat = messages.validate_python(
                [*prompt_messages(sample), {"role": "assistant", "content": sample.completion}]
            )
            last = len(chat) - 1
            nodes = [
                MessageNode(parent=i - 1 if i else None, message=m, sampled=i == last)
                for i, m in enumerate(chat)
            ]
            trace = vf.Trace(
                task=TraceTask(type=cls.__name__, data=data, key=task.key, hash=task.hash),
                agent=agent.model_copy(),
                nodes=nodes,
            )
            return task, trace

        return trace_of

    async def ascore(self, samples: list[Sample]) -> Scores:
        self.built  # noqa: B018 - a bad config is an error, not an abstention per sample
        tracer, names = self._tracer(), self.output_objectives
        start = 1 if self.config.total else 0
        rewards = names[start : len(names) - len(self.config.metrics)]
        # each sample has its own task and trace, so verifiers scores them concurrently
        return list(await asyncio.gather(*(self._one(tracer, rewards, s) for s in samples)))

    async def _one(
        self, tracer: Callable[[Sample], tuple[Any, Any]], rewards: Sequence[str], sample: Sample
    ) -> Row:
        try:
            task, trace = tracer(sample)
        except Exception as exc:
            return failure("building the verifiers task", exc)
        try:
            await task.score(trace)
        except Exception as exc:
            return failure("verifiers scoring", exc)
        row: list[float | None] = []
        if self.config.total:
            unscored = [k for k, r in trace.rewards.items() if r is None]
            if unscored:
                return Abstain(f"verifiers left rewards {unscored} unscored")
            row.append(number(trace.reward))
        for name in rewards:
            reward = trace.rewards.get(name)
            if reward is None:
                return Abstain(f"verifiers reward {name!r} was not scored")
            row.append(number(reward.score))
        for name in self.config.metrics:
            row.append(number(trace.metrics.get(name)))
            if row[-1] is None:
                return Abstain(f"verifiers metric {name!r} was not recorded")
        return row


def to_sample(task: Any, trace: Any, reference_field: str | None = "answer") -> Sample:
    """A verifiers (task data, trace) as a Sample: the task's prompt, the trace's last reply
    as the completion, and the task data's ``reference_field`` as the reference."""
    prompt = task.prompt
    if prompt is None:
        prompt = ""
    elif not isinstance(prompt, str):
        prompt = [m.model_dump(include={"role", "content"}) for m in prompt]
    reference = getattr(task, reference_field, None) if reference_field else None
    return Sample(prompt=prompt, completion=trace.last_reply, reference=reference)


class PipelineRewards:
    """A rewardhub pipeline as verifiers reward and metric functions (see
    :func:`pipeline_rewards`); one pipeline call per trace, shared by both."""

    def __init__(self, bridge: PipelineBridge, reference_field: str | None) -> None:
        self._bridge = bridge
        self._reference_field = reference_field

    async def _scored(self, task: Any, trace: Any) -> Scored:
        cached = trace.info.get(INFO_KEY)
        if isinstance(cached, Mapping) and "scored" in cached:
            return Scored(**cached["scored"])
        result = (await self._bridge.ascore([to_sample(task, trace, self._reference_field)]))[0]
        trace.info[INFO_KEY] = {"scored": result.__dict__, **result.details()}
        return result

    async def reward(self, task: Any, trace: Any) -> float:
        """The pipeline's total, for ``@vf.reward`` / ``TaskConfig.rewards``."""
        result = await self._scored(task, trace)
        if result.total is None:
            raise Unscorable(f"rewardhub could not score this rollout: {result.unscorable}")
        return result.total

    async def metrics(self, task: Any, trace: Any) -> dict[str, float]:
        """Each objective that has a value, for ``@vf.metric`` / ``TaskConfig.metrics``."""
        result = await self._scored(task, trace)
        return {k: v for k, v in result.values.items() if v is not None}


class Unscorable(RuntimeError):
    """Raised by :meth:`PipelineRewards.reward` for an unscorable rollout: verifiers records the
    error on the trace and leaves the reward unscored (``None``)."""


def pipeline_rewards(
    spec: SpecLike = None, *, hub: Hub | None = None, reference_field: str | None = "answer"
) -> PipelineRewards:
    """A rewardhub pipeline as verifiers v1 functions: ``.reward`` (the total) and ``.metrics``
    (one value per objective). Plug them into a task by import path, e.g. with
    ``scorer = pipeline_rewards("spec.yaml")``, ``reward = scorer.reward`` and
    ``metrics = scorer.metrics`` in ``mymod``::

        TaskConfig(rewards={"rewardhub": {"fn": "mymod:reward"}},
                   metrics={"rewardhub": {"fn": "mymod:metrics"}})

    or call them from ``@vf.reward`` / ``@vf.metric`` methods."""
    framework("verifiers", "pipeline_rewards")
    return PipelineRewards(PipelineBridge(spec, hub, "verifiers"), reference_field)


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Verifiers)
