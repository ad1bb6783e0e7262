"""The FastAPI app: /v1/score, /v1/aggregate, the OpenRLHF route, health, readiness, metrics.

Routes stay thin; :mod:`rewardhub.server.guard` does auth, limits, deadlines and metrics around
them, and :class:`Scorer` decides how a request's samples reach the pipeline (micro-batched
with other requests' when the spec allows it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.adapters._common import AbstainFill
from rewardhub.adapters.openrlhf import no_response, to_samples
from rewardhub.batching import MicroBatcher, Row, batch_relative
from rewardhub.errors import RewardHubError, SpecError
from rewardhub.outcome import json_number, record
from rewardhub.server.metrics import Metrics
from rewardhub.server.settings import ServerSettings
from rewardhub.types import RewardBatch, Sample

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rewardhub.pipeline import Pipeline


class SampleIn(BaseModel):
    """One sample: what ``rewardhub score`` reads from a JSONL line."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | list[dict[str, Any]] = ""
    completion: str
    reference: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples: list[SampleIn]
    weights: dict[str, float] | None = None
    """per-call weights overriding the spec's (such a request is scored as its own batch)"""


class AggregateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    results: list[dict[str, Any]]
    """records as /v1/score returns them: ``{"rewards": {...}, "outcomes"?: {...}}``"""
    method: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    weights: dict[str, float] | None = None


class OpenRLHFRequest(BaseModel):
    """OpenRLHF 0.11's remote reward request (``--reward.remote_url``)."""

    query: list[str]
    prompts: list[str]
    labels: list[Any] = Field(default_factory=list)


class RequestError(Exception):
    """A request the server refuses: ``status`` and a message naming the field and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
            )

    async def rows(
        self, samples: Sequence[Sample], weights: dict[str, float] | None = None
    ) -> list[Row]:
        if not samples:
            return []
        if self.batcher is not None and weights is None:
            return list(await asyncio.gather(*(self.batcher.submit(s) for s in samples)))
        self.metrics.batch_size.observe(len(samples))
        result = await self.pipeline.ascore(samples, weights=weights)
        return [Row.of(result, i) for i in range(len(samples))]

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


def row_record(row: Row, objectives: Sequence[str]) -> dict[str, Any]:
    """One sample's JSON answer: the record format of :mod:`rewardhub.outcome` (null for no
    value, ``outcomes`` naming the cells that are not values), the total, and ``unscorable``
    with the reason whenever the total is null."""
    rec = record(
        objectives,
        [row.values[o] for o in objectives],
        [row.outcome(o) for o in objectives],
        row.reasons,
        None if row.std is None else [row.std[o] for o in objectives],
    )
    rec["total"] = json_number(row.total)
    if rec["total"] is None:
        rec["unscorable"] = row.unscorable or "the aggregate gave no number (e.g. nothing applied)"
    return rec


def create_app(pipeline: Pipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The reward server's ASGI app over ``pipeline`` (the caller keeps ownership of it)."""
    from rewardhub._optional import require

    fastapi = require("fastapi", "server", "the reward server")
    responses = require("fastapi.responses", "server", "the reward server")
    from fastapi.exceptions import RequestValidationError

    from rewardhub.server.guard import Guard, ServerState

    settings = settings or ServerSettings()
    metrics = Metrics(pipeline.engine)
    scorer = Scorer(pipeline, settings, metrics)
    filler = AbstainFill(pipeline)
    state = ServerState(settings=settings, metrics=metrics, scorer=scorer)
    objectives = list(pipeline.objectives)
    JSONResponse = responses.JSONResponse

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        scorer.close()  # the batcher's thread; the pipeline belongs to the caller

    app: FastAPI = fastapi.FastAPI(
        lifespan=lifespan,
        title="rewardhub",
        description="Vector rewards from a rewardhub pipeline (see docs/serving.md).",
        version="1",
    )
    app.state.rewardhub = state

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: RequestValidationError) -> Any:
        fields = [
            {"field": _dotted(e.get("loc", ())), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return JSONResponse(
            {"error": f"{first['field']}: {first['message']}", "fields": fields}, 422
        )

    @app.exception_handler(RequestError)
    async def refused(request: Any, exc: RequestError) -> Any:
        return JSONResponse({"error": exc.message}, exc.status)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Any:
        """Sources loaded and not draining."""
        if state.draining:
            return JSONResponse({"status": "draining"}, 503)
        return {"status": "ready", "sources": [b.id for b in pipeline.engine.sources]}

    @app.get("/metrics", tags=["ops"])
    async def metrics_route() -> Any:
        """Prometheus metrics (text format)."""
        body, content_type = metrics.render()
        return responses.Response(body, media_type=content_type)

    @app.get("/v1/spec", tags=["scoring"])
    async def spec() -> dict[str, Any]:
        """The pipeline spec and its objectives."""
        return {
            "objectives": objectives,
            "aggregate": pipeline.aggregator.method,
            "micro_batching": scorer.batcher is not None,
            "spec": pipeline.spec.model_dump(mode="json", exclude_none=True),
        }

    @app.post("/v1/score", tags=["scoring"])
    async def score(req: ScoreRequest) -> Any:
        """Samples in; per sample the reward vector, its outcomes and reasons, and the total
        (null when unscorable, with the reason)."""
        _check_count(len(req.samples), settings.max_samples, "samples")
        samples = [Sample(s.prompt, s.completion, s.reference, s.metadata) for s in req.samples]
        rows = await _scored(scorer, samples, req.weights)
        return JSONResponse(
            {"objectives": objectives, "results": [row_record(r, objectives) for r in rows]}
        )

    @app.post("/v1/aggregate", tags=["scoring"])
    async def aggregate(req: AggregateRequest) -> Any:
        """Reward vectors in (records as /v1/score returns them), totals out, with the spec's
        aggregation or any registered ``method`` and its ``params``."""
        _check_count(len(req.results), settings.max_samples, "results")
        try:
            batch = RewardBatch.from_records(req.results, objectives)
            pipe = pipeline
            if req.method is not None:
                pipe = pipeline.with_aggregator(req.method, **req.params)
            result = pipe.aggregate(batch, weights=req.weights)
        except SpecError as exc:
            raise RequestError(422, f"{exc.path or 'method'}: {exc.message}") from None
        except (RewardHubError, ValueError, TypeError) as exc:
            raise RequestError(422, f"results: {exc}") from None
        unscorable = result.diagnostics.get("unscorable", {})
        out = []
        for i in range(batch.n):
            rec: dict[str, Any] = {"total": json_number(float(result.total[i]))}
            if i in unscorable:
                rec["unscorable"] = unscorable[i]
            out.append(rec)
        return JSONResponse({"method": pipe.aggregator.method, "results": out})

    async def openrlhf(req: OpenRLHFRequest) -> Any:
        """OpenRLHF's remote reward protocol: ``{"query", "prompts", "labels"}`` in,
        ``{"rewards", "scores", "extra_logs"}`` out (every objective and abstain flag)."""
        if scorer.batch_relative:
            raise RequestError(
                409,
                f"this spec uses {', '.join(scorer.batch_relative)}, which compares samples "
                "within a batch; OpenRLHF sends one sample per request. Use a per-sample spec",
            )
        labels = req.labels or [None] * len(req.query)
        _check_count(len(req.query), settings.max_samples, "query")
        try:
            pairs = to_samples(req.query, req.prompts, labels)
        except ValueError as exc:
            raise RequestError(422, f"query: {exc}") from None
        rows = iter(await _scored(scorer, [s for s, r in pairs if r is not None]))
        numbers = [
            filler.numbers(next(rows) if r is not None else no_response(filler), s)
            for s, r in pairs
        ]
        totals = [n["score"] for n in numbers]
        keys = filler.keys()[1:]  # "score" first, then the objectives and the flags
        return JSONResponse(
            {
                "rewards": totals,
                "scores": list(totals),
                "extra_logs": {k: [n[k] for n in numbers] for k in keys},
            }
        )

    # the guard maps /openrlhf/<secret> here once the secret matches
    app.post("/openrlhf", tags=["scoring"], summary="OpenRLHF remote reward")(openrlhf)

    app.add_middleware(Guard, state=state)
    return app


async def _scored(
    scorer: Scorer, samples: list[Sample], weights: dict[str, float] | None = None
) -> list[Row]:
    try:
        return await scorer.rows(samples, weights)
    except RewardHubError as exc:
        if isinstance(exc, ValueError):  # the request's fault: bad weights, a bad sample
            raise RequestError(422, f"{'weights: ' if weights else ''}{exc}") from None
        raise RequestError(500, f"scoring failed: {exc}") from None


def _check_count(n: int, limit: int, field: str) -> None:
    if n > limit:
        raise RequestError(
            422,
            f"{field}: {n} items, at most {limit} per request (split the request, or raise "
            "the server's --max-samples)",
        )


def _dotted(loc: Sequence[Any]) -> str:
    """``("body", "samples", 0, "completion")`` → ``samples[0].completion``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"
