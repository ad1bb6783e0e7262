"""The FastAPI app: /v1/score, /v1/aggregate, the OpenRLHF route, health, readiness, metrics.

Routes stay thin; :mod:`rewardhub.server.guard` does auth, limits, deadlines and metrics around
them, :mod:`rewardhub.server.codec` parses bodies and encodes answers, and
:class:`~rewardhub.server.scorer.Scorer` decides how a request's samples reach the pipeline.
Every CPU-bound step whose size the client chooses (parsing a large body, splitting OpenRLHF
queries, /v1/aggregate, encoding a large answer) runs on the server's worker threads, so the
event loop keeps answering everyone else; all of it is under the request deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from rewardhub._optional import require
from rewardhub.adapters._common import AbstainFill
from rewardhub.adapters.openrlhf import no_response, to_samples
from rewardhub.batch_of_one import advice, batch_of_one
from rewardhub.batching import Row
from rewardhub.errors import InputError, RewardHubError, SpecError
from rewardhub.outcome import json_number
from rewardhub.server import codec
from rewardhub.server.codec import RequestError, row_record
from rewardhub.server.dashboard import install_dashboard
from rewardhub.server.guard import Guard, Handler
from rewardhub.server.metrics import Metrics
from rewardhub.server.scorer import Scorer
from rewardhub.server.settings import ServerSettings
from rewardhub.server.state import ServerState
from rewardhub.types import RewardBatch, Sample

# at import: FastAPI resolves the routes' ``Request`` annotation in this module's globals
require("fastapi", "server", "the reward server")
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import Response  # noqa: E402

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline

T = TypeVar("T")

#: bodies above this many bytes are parsed on a worker thread (below, a thread hop costs more)
BIG_BODY = 64 * 1024
#: answers with more rows than this are built and encoded on a worker thread
BIG_ANSWER = 64

_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": codec.ErrorBody, "description": what}
    for status, what in {
        401: "missing or wrong token",
        408: "the body did not arrive within the body deadline",
        413: "body over the byte limit",
        422: "invalid request (names the field)",
        429: "too many requests in flight (Retry-After)",
        503: "draining",
        504: "past the request deadline",
    }.items()
}


def create_app(pipeline: Pipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The reward server's ASGI app over ``pipeline`` (the caller keeps ownership of it)."""
    settings = settings or ServerSettings()
    metrics = Metrics(pipeline.engine)
    scorer = Scorer(pipeline, settings, metrics)
    filler = AbstainFill(pipeline)
    state = ServerState(settings=settings, metrics=metrics, scorer=scorer)
    objectives = list(pipeline.objectives)

    def answer(data: Any, status: int = 200) -> Response:
        return Response(codec.encode(data), status, media_type="application/json")

    async def off_loop(fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread; a request past its deadline that is still queued
        is dropped (one already running finishes, its answer unused)."""
        return await asyncio.get_running_loop().run_in_executor(state.workers, fn, *args)

    async def parsed(raw: bytes, adapter: Any) -> Any:
        if len(raw) > BIG_BODY:
            return await off_loop(codec.parse, adapter, raw)
        return codec.parse(adapter, raw)

    def route(handler: Handler) -> Callable[..., Awaitable[Response]]:
        """The FastAPI route over a scoring handler (the guard calls the handler itself; this
        serves the schema, and the app when something else stands in front of it)."""

        async def endpoint(request: Request) -> Response:
            return Response(await handler(await request.body()), media_type="application/json")

        endpoint.__doc__ = handler.__doc__
        return endpoint

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # what start-up built (modules, the app, the pipeline) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it mid-request
        gc.collect()
        gc.freeze()
        yield
        state.close()  # the batcher's and the workers' threads; the pipeline is the caller's

    app = _GuardedApp(
        lifespan=lifespan,
        title="rewardhub",
        description="Vector rewards from a rewardhub pipeline (see docs/serving.md).",
        version="1",
    )
    app.state.rewardhub = state

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, exc: RequestValidationError) -> Any:
        fields = [codec.field_error(e) for e in exc.errors()]
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return answer({"error": f"{first['field']}: {first['message']}", "fields": fields}, 422)

    @app.exception_handler(RequestError)
    async def refused(request: Any, exc: RequestError) -> Any:
        return answer(exc.body(), exc.status)

    @app.exception_handler(Exception)
    async def crashed(request: Any, exc: Exception) -> Any:
        # FastAPI's error layer answers this, then re-raises to the guard, which logs the type
        return answer({"error": "internal error (see the server log)"}, 500)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": codec.ErrorBody}})
    async def readyz() -> Any:
        """Sources loaded and not draining."""
        if state.draining:
            return answer({"status": "draining"}, 503)
        return {"status": "ready", "sources": [b.id for b in pipeline.engine.sources]}

    @app.get(
        "/metrics",
        tags=["ops"],
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            401: _REFUSALS[401],
        },
    )
    async def metrics_route() -> Any:
        """Prometheus metrics (text format)."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/spec", tags=["scoring"], responses={401: _REFUSALS[401]})
    async def spec() -> dict[str, Any]:
        """The pipeline spec and its objectives."""
        return {
            "objectives": objectives,
            "aggregate": pipeline.aggregator.method,
            "micro_batching": scorer.batcher is not None,
            "spec": pipeline.spec.model_dump(mode="json", exclude_none=True),
        }

    def records(rows: list[Row], warnings: list[str]) -> bytes:
        body: dict[str, Any] = {
            "objectives": objectives,
            "total_from": pipeline.total_from,
            "results": [row_record(r, objectives) for r in rows],
        }
        if warnings:
            body["warnings"] = warnings
        return codec.encode(body)

    async def score(body: bytes) -> bytes:
        """Samples in; per sample the reward vector, its outcomes and reasons, and the total
        (null when unscorable, with the reason)."""
        req = await parsed(body, codec.SCORE)
        given = req["samples"]
        _check_count(len(given), settings.max_samples, "samples")
        samples = [_sample(s, i, settings.max_depth) for i, s in enumerate(given)]
        rows = await _scored(scorer, samples, req.get("weights"))
        lonely = batch_of_one(pipeline, samples) if scorer.batch_relative else []
        warnings = [advice(lonely)] if lonely else []
        if len(rows) > BIG_ANSWER:
            return await off_loop(records, rows, warnings)
        return records(rows, warnings)

    def aggregated(req: codec.AggregateRequest) -> dict[str, Any]:
        _check_count(len(req["results"]), settings.max_samples, "results")
        codec.check_depth(req["results"], settings.max_depth, "results")
        codec.check_depth(req.get("params", {}), settings.max_depth, "params")
        normalize = _normalize_choice(req.get("normalize"), pipeline)
        try:
            batch = RewardBatch.from_records(req["results"], objectives)
            # a copy: a client's records never move the running statistics others are
            # scored with (only /v1/score traffic does)
            pipe = pipeline.detached()
            method = req.get("method")
            if method is not None:
                pipe = pipe.with_aggregator(method, **req.get("params", {}))
            with np.errstate(all="ignore"):  # a client's 1e300s overflow to a null total
                result = pipe.aggregate(batch, weights=req.get("weights"), normalize=normalize)
        except SpecError as exc:
            raise RequestError(422, f"{exc.path or 'method'}: {exc.message}") from None
        except (RewardHubError, ValueError, TypeError, AttributeError) as exc:
            raise RequestError(422, f"results: {exc}") from None
        unscorable = result.diagnostics.get("unscorable", {})
        out = []
        for i in range(batch.n):
            rec: dict[str, Any] = {"total": json_number(float(result.total[i]))}
            if i in unscorable:
                rec["unscorable"] = unscorable[i]
            out.append(rec)
        return {
            "method": pipe.aggregator.method,
            "total_from": pipeline.total_from if normalize else "rewards",
            "results": out,
        }

    async def aggregate(body: bytes) -> bytes:
        """Reward vectors in (records as /v1/score returns them), totals out, with the spec's
        aggregation or any registered ``method`` and its ``params``. Works on a copy of any
        stateful normaliser: only /v1/score traffic updates running statistics."""
        req = await parsed(body, codec.AGGREGATE)
        # any method, any solver, on up to --max-samples records: always off the loop
        return await off_loop(lambda: codec.encode(aggregated(req)))

    def openrlhf_samples(req: codec.OpenRLHFRequest) -> list[tuple[Sample, str | None]]:
        query = req["query"]
        labels = req.get("labels") or [None] * len(query)
        _check_count(len(query), settings.max_samples, "query")
        codec.check_depth(labels, settings.max_depth, "labels")
        try:
            return to_samples(query, req["prompts"], labels)
        except ValueError as exc:
            raise RequestError(422, f"query: {exc}") from None

    async def openrlhf(body: bytes) -> bytes:
        """OpenRLHF's remote reward protocol: ``{"query", "prompts", "labels"}`` in,
        ``{"rewards", "scores", "extra_logs"}`` out (every objective and abstain flag). The
        guard maps ``/openrlhf/<secret>`` here once the secret matches."""
        if scorer.batch_relative:
            raise RequestError(
                409,
                f"this spec uses {', '.join(scorer.batch_relative)}, which compares samples "
                "within a batch; OpenRLHF sends one sample per request. Use a per-sample spec",
            )
        req = await parsed(body, codec.OPENRLHF)
        big = len(body) > BIG_BODY
        pairs = await off_loop(openrlhf_samples, req) if big else openrlhf_samples(req)
        rows = iter(await _scored(scorer, [s for s, r in pairs if r is not None]))
        numbers = [
            filler.numbers(next(rows) if r is not None else no_response(filler), s)
            for s, r in pairs
        ]
        totals = [n["score"] for n in numbers]
        keys = filler.keys()[1:]  # "score" first, then the objectives and the flags
        return codec.encode(
            {
                "rewards": totals,
                "scores": list(totals),
                "extra_logs": {k: [n[k] for n in numbers] for k in keys},
            }
        )

    scoring: dict[str, Handler] = {
        "/v1/score": score,
        "/v1/aggregate": aggregate,
        "/openrlhf": openrlhf,
    }
    conflicts: dict[int | str, dict[str, Any]] = {
        404: {"model": codec.ErrorBody, "description": "no OpenRLHF secret set on the server"},
        409: {"model": codec.ErrorBody, "description": "the spec compares samples in a batch"},
    }
    for path, handler, model, request_type, extra in (
        ("/v1/score", score, codec.ScoreResponse, codec.SCORE, {}),
        ("/v1/aggregate", aggregate, codec.AggregateResponse, codec.AGGREGATE, {}),
        (
            "/openrlhf",
            openrlhf,
            codec.OpenRLHFResponse,
            codec.OPENRLHF,
            conflicts,
        ),
    ):
        app.post(
            path,
            tags=["scoring"],
            name=handler.__name__,
            response_model=model,
            responses={**_REFUSALS, **extra},
            openapi_extra=codec.openapi_body(request_type),
        )(route(handler))

    _document_the_secret_path(app)
    # the page is HTML, its refusal JSON: say so, or the schema would claim text/html for both
    unauthorized = {
        "description": _REFUSALS[401]["description"],
        "content": {"application/json": {"schema": codec.inline_schema(codec.ERROR_BODY)}},
    }
    install_dashboard(app, state, responses={401: unauthorized})
    app.guard = Guard(functools.partial(FastAPI.__call__, app), state=state, handlers=scoring)
    return app


class _GuardedApp(FastAPI):
    """FastAPI with the guard in front of all of it: a scoring POST never passes through
    FastAPI's and Starlette's own layers (telemetry, error and body-limit middleware,
    routing), which cost more per request than scoring a rule spec; every other request
    reaches them through the guard."""

    guard: Guard | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.guard is None:  # pragma: no cover (create_app always sets it)
            await super().__call__(scope, receive, send)
        else:
            await self.guard(scope, receive, send)


def _document_the_secret_path(app: FastAPI) -> None:
    """The OpenAPI schema names the OpenRLHF route as clients call it, ``/openrlhf/{secret}``
    (the guard checks the secret and hands the app ``/openrlhf``)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default()
            route = schema["paths"].pop("/openrlhf")
            for operation in route.values():
                operation.setdefault("parameters", []).append(
                    {
                        "name": "secret",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "the server's REWARDHUB_OPENRLHF_TOKEN",
                    }
                )
            schema["paths"]["/openrlhf/{secret}"] = route
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _sample(given: codec.SampleIn, i: int, max_depth: int) -> Sample:
    prompt = given.get("prompt", "")
    reference = given.get("reference")
    metadata = given.get("metadata") or {}
    for name, value in (("prompt", prompt), ("reference", reference), ("metadata", metadata)):
        if value and isinstance(value, (list, dict)):  # an empty one is one level deep
            codec.check_depth(value, max_depth, f"samples[{i}].{name}")
    try:
        return Sample(prompt, given["completion"], reference, metadata)
    except InputError as exc:
        raise RequestError(422, f"samples[{i}]: {exc}") from None


async def _scored(
    scorer: Scorer, samples: list[Sample], weights: dict[str, float] | None = None
) -> list[Row]:
    try:
        return await scorer.rows(samples, weights)
    except RewardHubError as exc:
        if isinstance(exc, ValueError):  # the request's fault: bad weights, a bad sample
            raise RequestError(422, f"{'weights: ' if weights else ''}{exc}") from None
        raise RequestError(500, f"scoring failed: {exc}") from None


def _normalize_choice(choice: bool | None, pipeline: Pipeline) -> bool:
    """``normalize`` of an aggregate request: required when the spec normalises."""
    if pipeline.total_from == "rewards":
        return bool(choice)  # nothing to apply either way
    if choice is None:
        raise RequestError(
            422,
            f"normalize: this spec's totals are computed from {pipeline.total_from}; say "
            '"normalize": true to apply that to these rewards first, or false to aggregate '
            "them as given (records from /v1/score hold the raw rewards)",
        )
    return choice


def _check_count(n: int, limit: int, field: str) -> None:
    if n > limit:
        raise RequestError(
            422,
            f"{field}: {n} items, at most {limit} per request (split the request, or raise "
            "the server's --max-samples)",
        )
