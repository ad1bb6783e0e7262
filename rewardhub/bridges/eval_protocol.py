"""Eval Protocol (``eval-protocol``, built against 0.3.33): reward functions both ways.

- ``eval-protocol`` source: a ``@reward_function`` (pointwise, or batch mode scoring the
  rollouts of one prompt together) named by import path; ``EvaluateResult.score`` is the
  ``score`` objective and each listed metric another one.
- :func:`pipeline_reward_function`: a rewardhub pipeline as an Eval Protocol reward function
  returning ``EvaluateResult`` with one ``MetricResult`` per objective.

Outcomes: an exception or ``EvaluateResult.error`` means the evaluation itself failed: could
not score. ``is_score_valid=False`` without an error is, in Eval Protocol's own rewards (format,
accuracy, ...), a completion that did not meet the requirement, so by default it is a failed
check (``invalid: fail``); ``invalid: abstain`` treats it as could not score instead.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub._optional import require
from rewardhub.bridges._common import (
    BridgeSource,
    PipelineBridge,
    Scored,
    chat,
    check_objectives,
    failure,
    framework,
    from_chat,
    number,
)
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, Row, Scores
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.adapters._common import SpecLike
    from rewardhub.hub import Hub


def eval_protocol_models() -> Any:
    """``eval_protocol.models``, imported without network access or import-time warnings:
    litellm (which eval_protocol imports) fetches a model price list at import unless told
    to use its bundled copy, and eval_protocol's models emit pydantic deprecation warnings."""
    models = sys.modules.get("eval_protocol.models")
    if models is not None:  # imported: the per-result path stays cheap
        return models
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        require("eval_protocol", "eval-protocol", "the Eval Protocol bridge")
        warnings.simplefilter("ignore")  # eval_protocol's import adds a filter in front
        return framework("eval-protocol", "the Eval Protocol bridge")


class EvalProtocolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    function: str = Field(
        description="'module:function' or 'file.py:function' of an Eval Protocol reward function"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed on every call")
    score: str | None = Field(
        "score", description="the objective of EvaluateResult.score (null: leave it out)"
    )
    metrics: list[str] = Field(
        default_factory=list, description="EvaluateResult.metrics names, each an objective"
    )
    invalid: Literal["fail", "abstain"] = Field(
        "fail",
        description="what is_score_valid=false (without an error) means: a failed check "
        "(Eval Protocol's own rewards use it for a wrong format or answer) or could not score",
    )

    @model_validator(mode="after")
    def _some_objective(self) -> EvalProtocolConfig:
        check_objectives(self.score, self.metrics, "score", "metrics")
        return self


class EvalProtocol(BridgeSource):
    """An Eval Protocol reward function (eval-protocol): its score and metrics as objectives."""

    type = "eval-protocol"
    Config = EvalProtocolConfig
    extra = "eval-protocol"
    ref_field = "function"

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (*([config.score] if config.score else []), *config.metrics)

    @property
    def built(self) -> Any:
        if self._built is None:
            eval_protocol_models()
            self._built = self.build()
        return self._built

    def build(self) -> Any:
        with warnings.catch_warnings():  # user modules import eval_protocol's rewards
            warnings.simplefilter("ignore")
            fn = self.load(self.config.function, "function")
        if not callable(fn):
            raise SourceError(
                f"{self.type} source: function: {self.config.function!r} is not callable"
            )
        return fn

    @property
    def batched(self) -> bool:
        return getattr(self.built, "_reward_function_mode", "pointwise") == "batch"

    async def ascore(self, samples: list[Sample]) -> Scores:
        fn = self.built
        rows: list[Row] = []
        if not self.batched:
            result_type = eval_protocol_models().EvaluateResult
            for sample in samples:
                try:
                    out = fn(
                        messages=chat(sample), ground_truth=sample.reference, **self.config.kwargs
                    )
                    if not isinstance(out, result_type) and inspect.isawaitable(out):
                        out = await out
                except Exception as exc:
                    rows.append(failure("the eval-protocol reward function", exc))
                    continue
                rows.append(self._row(out))
            return rows
        rows = [None] * len(samples)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, s in enumerate(samples):  # batch mode scores the rollouts of one prompt together
            groups.setdefault((s.key[0], s.key[2]), []).append(i)
        for idx in groups.values():
            for i, row in zip(idx, await self._group(fn, [samples[i] for i in idx])):
                rows[i] = row
        return rows

    async def _group(self, fn: Callable[..., Any], samples: Sequence[Sample]) -> list[Row]:
        try:
            out = fn(
                rollouts_messages=[chat(s) for s in samples],
                ground_truth=samples[0].reference,
                **self.config.kwargs,
            )
            if inspect.isawaitable(out):
                out = await out
        except Exception as exc:
            return [failure("the eval-protocol reward function", exc)] * len(samples)
        if not isinstance(out, list) or len(out) != len(samples):
            why = f"batch mode returned {type(out).__name__}, not {len(samples)} results"
            return [Abstain(why)] * len(samples)
        return [self._row(r) for r in out]

    def _row(self, out: Any) -> Row:
        result_type = eval_protocol_models().EvaluateResult
        try:
            result = out if isinstance(out, result_type) else result_type.model_validate(out)
        except Exception as exc:
            return failure("validating the EvaluateResult", exc)
        if result.error:
            return Abstain(f"eval-protocol: {result.error}")
        if not result.is_score_valid:
            why = f"eval-protocol: score not valid: {result.reason or 'no reason given'}"
            return Fail(why) if self.config.invalid == "fail" else Abstain(why)
        row: list[float | None] = []
        if self.config.score:
            row.append(number(result.score))
        for name in self.config.metrics:
            metric = (result.metrics or {}).get(name)
            if metric is None:
                return Abstain(f"eval-protocol: metric {name!r} not reported")
            row.append(number(metric.score))
        if any(v is None for v in row):
            return Abstain(f"eval-protocol: a score is not a finite number ({row})")
        return row


def evaluate_result(result: Scored) -> Any:
    """A :class:`Scored` as Eval Protocol's ``EvaluateResult``: one ``MetricResult`` per
    objective; an unscorable sample has ``is_score_valid=False`` and ``error`` set (Eval
    Protocol leaves such rows out of its aggregates), score 0.0 since the field is required."""
    models = eval_protocol_models()
    metrics = {}
    for name, value in result.values.items():
        outcome = result.outcomes[name]
        metrics[name] = models.MetricResult(
            score=0.0 if value is None else value,
            is_score_valid=value is not None,
            reason=result.reasons.get(name, outcome),
            data={"outcome": outcome},
        )
    if result.total is None:
        why = f"rewardhub could not score this sample: {result.unscorable}"
        return models.EvaluateResult(
            score=0.0, is_score_valid=False, reason=why, error=why, metrics=metrics
        )
    return models.EvaluateResult(score=result.total, reason="rewardhub pipeline", metrics=metrics)


def _plain(value: Any) -> Any:
    """A ground truth as plain data (Eval Protocol may coerce it to Message models)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is None or isinstance(v, (str, int, float, bool))}


def pipeline_reward_function(
    spec: SpecLike = None,
    *,
    hub: Hub | None = None,
    mode: Literal["pointwise", "batch"] = "pointwise",
    id: str | None = None,
) -> Callable[..., Any]:
    """A rewardhub pipeline as an Eval Protocol reward function (made with Eval Protocol's
    ``reward_function`` decorator, so it validates its output and deploys like theirs).

    Pointwise: ``f(messages, ground_truth=None, **kwargs) -> EvaluateResult``; batch:
    ``f(rollouts_messages, ground_truth=None, **kwargs) -> list[EvaluateResult]`` (one pipeline
    call for the rollouts). Scalar keyword arguments become sample metadata."""
    eval_protocol_models()
    from eval_protocol.typed_interface import reward_function

    bridge = PipelineBridge(spec, hub, "an Eval Protocol reward function")

    if mode == "batch":

        def rewardhub_batch(
            rollouts_messages: list[list[Any]], ground_truth: Any = None, **kwargs: Any
        ) -> list[Any]:
            truth, meta = _plain(ground_truth), _metadata(kwargs)
            samples = [from_chat(m, truth, meta) for m in rollouts_messages]
            return [evaluate_result(r) for r in bridge.score(samples)]

        fn: Callable[..., Any] = rewardhub_batch
    else:

        def rewardhub_reward(messages: list[Any], ground_truth: Any = None, **kwargs: Any) -> Any:
            sample = from_chat(messages, _plain(ground_truth), _metadata(kwargs))
            return evaluate_result(bridge.score([sample])[0])

        fn = rewardhub_reward
    decorated: Callable[..., Any] = reward_function(fn, mode=mode, id=id)
    return decorated


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(EvalProtocol)
