"""How a request's samples reach the pipeline: micro-batched with other requests' samples when
the spec allows it, otherwise as one pipeline batch per request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rewardhub.batching import MicroBatcher, Row, batch_relative
from rewardhub.server.metrics import Metrics
from rewardhub.server.settings import ServerSettings
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline


class Scorer:
    """Scores requests: samples of concurrent requests share micro-batches when the spec is
    per-sample and ``window_ms`` > 0; otherwise each request is one pipeline batch."""

    def __init__(self, pipeline: Pipeline, settings: ServerSettings, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.batch_relative = batch_relative(pipeline)
        self.batcher: MicroBatcher | None = None
        if not self.batch_relative and settings.window_ms > 0:
            self.batcher = MicroBatcher(
                pipeline,
                window_ms=settings.window_ms,
                max_batch=settings.max_batch,
                on_batch=metrics.batch_size.observe,
                on_caller_loop=True,  # the server's loop: no thread hop per request
                # cheap sources only: holding a call for the window costs more than batching
                # saves; batches still form from the calls that come while one is scored
                eager=all(b.runs_inline for b in pipeline.engine.sources),
            )

    async def rows(
        self, samples: Sequence[Sample], weights: dict[str, float] | None = None
    ) -> list[Row]:
        if not samples:
            return []
        if self.batcher is not None and weights is None:
            if len(samples) == 1:  # the common case: no gather (a task per sample)
                return [await self.batcher.submit(samples[0])]
            return list(await asyncio.gather(*(self.batcher.submit(s) for s in samples)))
        self.metrics.batch_size.observe(len(samples))
        result = await self.pipeline.ascore(samples, weights=weights)
        return Row.all(result)

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
