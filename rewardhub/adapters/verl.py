"""verl: ``compute_score`` for ``reward.custom_reward_function`` (verl 0.9 reward loop).

verl calls ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **kw)``
once per sample, many at once, and builds its arrays from the first result's keys. The
functions made here gather those calls into pipeline batches (:class:`MicroBatcher`) and
always return the same keys: ``score``, every objective, ``abstained_<objective>`` and
``abstained`` (verl cannot take NaN; see :class:`AbstainFill`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rewardhub.adapters._common import AbstainFill, Fill, SpecLike, load_pipeline
from rewardhub.batching import MicroBatcher
from rewardhub.hub import Hub
from rewardhub.types import Sample

ComputeScore = Callable[..., Awaitable[dict[str, float]]]
SyncComputeScore = Callable[..., dict[str, float]]


def to_sample(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None
) -> Sample:
    """verl's arguments as a Sample: ``ground_truth`` is the reference; ``data_source`` and
    ``extra_info``'s keys go to metadata; the prompt is ``extra_info["prompt"]`` when the data
    carries it (verl does not pass the prompt)."""
    extra = dict(extra_info or {})
    prompt = extra.get("prompt", "")
    if not isinstance(prompt, (str, list)):
        prompt = str(prompt)
    return Sample(
        prompt=prompt,
        completion=solution_str,
        reference=ground_truth,
        metadata={**extra, "data_source": data_source},
    )


class _Scorer:
    def __init__(self, batcher: MicroBatcher, fill: AbstainFill) -> None:
        self.batcher = batcher
        self.fill = fill

    async def ascore(self, sample: Sample) -> dict[str, float]:
        return self.fill.numbers(await self.batcher.submit(sample), sample)

    def score(self, sample: Sample) -> dict[str, float]:
        return self.fill.numbers(self.batcher.submit_sync(sample), sample)


def _scorer(
    spec: SpecLike,
    hub: Hub | None,
    fill: Fill,
    fill_total: float | None,
    window_ms: float,
    max_batch: int,
) -> _Scorer:
    pipeline = load_pipeline(spec, hub)
    filler = AbstainFill(pipeline, fill, total=fill_total)  # validate before starting threads
    batcher = MicroBatcher(pipeline, window_ms=window_ms, max_batch=max_batch)
    return _Scorer(batcher, filler)


def make_compute_score(
    spec: SpecLike = None,
    *,
    hub: Hub | None = None,
    fill: Fill = "fail",
    fill_total: float | None = None,
    window_ms: float = 5.0,
    max_batch: int = 64,
) -> ComputeScore:
    """An ``async def compute_score`` for verl's reward loop, micro-batching concurrent calls.

    ``spec``: a Pipeline, a spec dict or file, or None for ``$REWARDHUB_SPEC``. ``fill`` /
    ``fill_total``: what an abstained cell / an unscorable total becomes (see AbstainFill).
    """
    scorer = _scorer(spec, hub, fill, fill_total, window_ms, max_batch)

    async def compute_score(
        data_source: Any = None,
        solution_str: str = "",
        ground_truth: Any = None,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        return await scorer.ascore(to_sample(data_source, solution_str, ground_truth, extra_info))

    compute_score.batcher = scorer.batcher  # type: ignore[attr-defined]
    return compute_score


def make_compute_score_sync(
    spec: SpecLike = None,
    *,
    hub: Hub | None = None,
    fill: Fill = "fail",
    fill_total: float | None = None,
    window_ms: float = 5.0,
    max_batch: int = 64,
) -> SyncComputeScore:
    """The same as :func:`make_compute_score` as a plain function; verl runs it in threads, and
    the calls of concurrent threads share batches too."""
    scorer = _scorer(spec, hub, fill, fill_total, window_ms, max_batch)

    def compute_score(
        data_source: Any = None,
        solution_str: str = "",
        ground_truth: Any = None,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        return scorer.score(to_sample(data_source, solution_str, ground_truth, extra_info))

    compute_score.batcher = scorer.batcher  # type: ignore[attr-defined]
    return compute_score


@functools.cache
def _default() -> ComputeScore:
    return make_compute_score()


async def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's ``compute_score`` over the pipeline of ``$REWARDHUB_SPEC`` (built on first call,
    once per process), with the default fill policy."""
    return await _default()(
        data_source=data_source,
        solution_str=solution_str,
        ground_truth=ground_truth,
        extra_info=extra_info,
    )
