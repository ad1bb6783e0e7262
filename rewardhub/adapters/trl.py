"""TRL (GRPOTrainer, RLOOTrainer; TRL 1.16): reward functions over a pipeline.

TRL calls each reward function as ``f(prompts=, completions=, completion_ids=, trainer_state=,
log_extra=, log_metric=, **dataset_columns)`` and wants one number or ``None`` per
completion. TRL 1.16 drops a completion only when *every* function returns ``None`` for it,
and otherwise ``nansum``s, so a ``None`` in one function alone counts as 0. Hence the spec's
``on_abstain`` is applied here in every mode (see docs/trainers.md): a sample that is
unscorable is ``None`` in every function. :func:`reward_funcs` returns one function per
objective (TRL weights and logs them as ``rewards/<objective>/mean``) or one ``total`` function
with the pipeline's aggregate; all of them share one pipeline call per batch.
"""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from rewardhub.adapters._common import SpecLike, load_pipeline
from rewardhub.errors import SpecError
from rewardhub.hub import Hub
from rewardhub.outcome import Outcome, counts
from rewardhub.pipeline import Pipeline
from rewardhub.spec import FillPolicy
from rewardhub.types import Sample, ScoreResult

#: dataset columns read as ``Sample.reference``, first present wins (see ``reference=``)
REFERENCE_COLUMNS = ("reference", "ground_truth", "answer", "solution")
#: keyword arguments TRL adds that are not dataset columns
_TRL_KWARGS = frozenset(
    {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}
)


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or (chat data) the contents of its messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(_content_text(m.get("content", "")) for m in completion)
    raise TypeError(
        f"a TRL completion is a string or a list of messages, got {type(completion).__name__}"
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # multimodal parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return str(content)


def to_samples(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    reference: Sequence[str],
) -> list[Sample]:
    """TRL's batch as Samples: the first of ``reference`` present among the columns becomes
    ``Sample.reference``; the other columns go to ``metadata``. Completions of the same prompt
    form one group (the GRPO group) for group-aware normalisers and aggregators."""
    if len(prompts) != len(completions):
        raise ValueError(f"got {len(prompts)} prompts for {len(completions)} completions")
    ref_col = next((c for c in reference if c in columns), None)
    meta_cols = {k: v for k, v in columns.items() if k != ref_col and k not in _TRL_KWARGS}
    refs = columns[ref_col] if ref_col is not None else None
    out = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions)):
        out.append(
            Sample(
                prompt=prompt if isinstance(prompt, (str, list)) else str(prompt),
                completion=completion_text(completion),
                reference=None if refs is None else refs[i],
                metadata={k: v[i] for k, v in meta_cols.items()},
            )
        )
    return out


class _Shared:
    """One pipeline call per TRL batch, shared by all the reward functions of a set.

    TRL hands every reward function the very same ``prompts`` and ``completions`` lists in one
    step; the last batch's lists are kept (so their ids cannot be reused) and compared by
    identity."""

    def __init__(self, pipeline: Pipeline, reference: Sequence[str], log: bool) -> None:
        self.pipeline = pipeline
        self.reference = tuple(reference)
        self.log = log
        self._key: tuple[Any, Any] | None = None
        self._result: ScoreResult | None = None
        self._task: asyncio.Future[ScoreResult] | None = None

    def _fresh(self, prompts: Any, completions: Any) -> bool:
        return self._key is None or self._key[0] is not prompts or self._key[1] is not completions

    def score(self, prompts: Any, completions: Any, kwargs: dict[str, Any]) -> ScoreResult:
        if self._fresh(prompts, completions) or self._result is None:
            samples = to_samples(prompts, completions, kwargs, self.reference)
            result = self.pipeline.score(samples)
            self._key, self._result, self._task = (prompts, completions), result, None
            self._report(result, kwargs)
        return self._result

    async def ascore(self, prompts: Any, completions: Any, kwargs: dict[str, Any]) -> ScoreResult:
        if self._fresh(prompts, completions) or self._task is None:
            samples = to_samples(prompts, completions, kwargs, self.reference)
            self._key, self._result = (prompts, completions), None
            # the functions TRL gathers concurrently all await this one call
            self._task = asyncio.ensure_future(self.pipeline.ascore(samples))
            task = self._task
            result = await task
            self._report(result, kwargs)
            return result
        return await self._task

    def _report(self, result: ScoreResult, kwargs: Mapping[str, Any]) -> None:
        """Per-kind rates to ``log_metric`` (``rewardhub/<kind>/<objective>`` for the kinds
        ``not_applicable``, ``failed``, ``unscorable``, and ``rewardhub/unscorable`` for
        samples), reasons to ``log_extra`` (TRL's completions table)."""
        if not self.log:
            return
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        v = result.vector
        n = max(v.n, 1)
        if callable(log_metric):
            for label, per_column in counts(np.asarray(v.outcomes)).items():
                kind = label.replace(" ", "_")
                for name, count in zip(v.objectives, per_column.tolist()):
                    log_metric(f"rewardhub/{kind}/{name}", count / n)
            log_metric("rewardhub/unscorable", len(_dropped(result)) / n)
        if callable(log_extra):
            reasons = [
                "; ".join(f"{src}: {why}" for src, why in sorted(err.items())) if err else ""
                for err in v.reasons
            ]
            log_extra("rewardhub_reasons", reasons)


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _dropped(result: ScoreResult) -> set[int]:
    """The samples TRL must drop: unscorable under the spec's policy (or an overflowed total),
    as the pipeline reports them, plus any other non-finite total."""
    rows = set(result.diagnostics.get("unscorable", {}))
    return rows | set(np.flatnonzero(np.isinf(result.total)).tolist())


def objective_column(result: ScoreResult, objective: str, fill: float | None) -> list[float | None]:
    """What TRL receives from one objective's function: its value; a failed cell's failing
    value; ``None`` for a not-applicable cell, and for *every* objective of a sample that is
    unscorable (so TRL drops the row); an unscorable cell of a scorable sample is ``fill``
    under ``on_abstain: {fill: x}``, ``None`` under ``renormalize`` (skipped)."""
    v = result.vector
    j = v.index(objective)
    out: list[float | None] = []
    codes = np.asarray(v.outcomes)[:, j].tolist()
    for value, code in zip(v.values[:, j].tolist(), codes):
        if code == Outcome.UNSCORABLE and fill is not None:
            out.append(fill)
        elif code in (Outcome.VALUE, Outcome.FAILED):
            out.append(_number(value))
        else:
            out.append(None)
    for i in _dropped(result):
        out[i] = None
    return out


class _Reward:
    """A TRL reward function reading one objective (or the total) of the shared call."""

    def __init__(self, shared: _Shared, objective: str | None) -> None:
        self.shared = shared
        self.objective = objective
        self.__name__ = objective or "total"
        policy = shared.pipeline.spec.on_abstain
        self.fill = policy.fill if isinstance(policy, FillPolicy) else None

    def _values(self, result: ScoreResult) -> list[float | None]:
        if self.objective is None:
            return [_number(x) for x in result.total.tolist()]
        return objective_column(result, self.objective, self.fill)

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return self._values(self.shared.score(prompts, completions, kwargs))

    def __repr__(self) -> str:
        return f"<rewardhub TRL reward {self.__name__!r}>"


class _AsyncReward(_Reward):
    async def __call__(  # type: ignore[override]
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return self._values(await self.shared.ascore(prompts, completions, kwargs))


def reward_funcs(
    pipeline: SpecLike,
    mode: Literal["objectives", "total"] = "objectives",
    *,
    hub: Hub | None = None,
    weights: Mapping[str, float] | None = None,
    reference: str | Sequence[str] = REFERENCE_COLUMNS,
    asynchronous: bool = False,
    log: bool = True,
) -> tuple[list[Any], list[float]]:
    """TRL reward functions over ``pipeline`` and the matching ``reward_weights``.

    ``mode="objectives"``: one function per objective, named after it, with weights from
    ``weights`` or else the spec's ``aggregate.weights`` (1 where unnamed); TRL sums them (or
    normalises first, GDPO); see :func:`objective_column` for what each cell becomes and
    ``on_abstain`` for an unscorable sample (``None`` in every function). ``mode="total"``: one function
    ``total`` returning the pipeline's aggregate (max-min, Pareto, robust, gates...), ``None``
    for an unscorable sample, weight 1. ``reference``: dataset column(s) read as
    ``Sample.reference``. ``asynchronous``: ``async`` functions (TRL gathers them).
    """
    pipe = load_pipeline(pipeline, hub)
    refs = (reference,) if isinstance(reference, str) else tuple(reference)
    shared = _Shared(pipe, refs, log)
    cls = _AsyncReward if asynchronous else _Reward
    if mode == "total":
        if weights is not None:
            raise SpecError(
                "weights apply to mode='objectives'; in 'total' mode the spec's aggregate decides",
                "weights",
            )
        return [cls(shared, None)], [1.0]
    if mode != "objectives":
        raise SpecError(f"mode must be 'objectives' or 'total', got {mode!r}", "mode")
    if weights is None and pipe.aggregator.method != "weighted":
        warnings.warn(
            f"mode='objectives' hands the objectives to TRL, which sums them; the spec's "
            f"aggregate method {pipe.aggregator.method!r} is not used. Use mode='total' for it.",
            UserWarning,
            stacklevel=2,
        )
    given = dict(weights) if weights is not None else _spec_weights(pipe)
    unknown = sorted(set(given) - set(pipe.objectives))
    if unknown:
        raise SpecError(
            f"weights name unknown objective(s) {unknown}; the objectives are "
            f"{list(pipe.objectives)}",
            "weights",
        )
    funcs = [cls(shared, o) for o in pipe.objectives]
    return funcs, [float(given.get(o, 1.0)) for o in pipe.objectives]


def _spec_weights(pipe: Pipeline) -> dict[str, float]:
    w = getattr(pipe.aggregator.config, "weights", None)
    return dict(w) if isinstance(w, Mapping) else {}
