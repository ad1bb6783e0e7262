"""The ASGI middleware in front of every route: drain, auth, the OpenRLHF secret path, the
in-flight bound, the body limit, the per-request deadline, metrics, and no stack trace out.

One plain ASGI class (not Starlette's BaseHTTPMiddleware, which costs a task per request).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewardhub.server.metrics import Metrics
from rewardhub.server.settings import OPENRLHF_TOKEN_ENV, ServerSettings

if TYPE_CHECKING:
    from rewardhub.server.app import Scorer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("rewardhub.server")

#: routes that score (bounded in flight, under the request deadline)
SCORING = frozenset({"/v1/score", "/v1/aggregate", "/openrlhf"})
#: routes open without the bearer token (probes and the API docs)
OPEN = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
#: what the OpenRLHF route's path looks like in metrics and logs
OPENRLHF = "/openrlhf"


@dataclass
class ServerState:
    """What the guard and the routes share."""

    settings: ServerSettings
    metrics: Metrics
    scorer: Scorer
    inflight: int = 0
    draining: bool = False


class Guard:
    """Wraps the FastAPI app; see the module docstring."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state
        s = state.settings
        self._bearer = f"Bearer {s.token}".encode() if s.token else None
        self._secret = s.openrlhf_token.encode() if s.openrlhf_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        sent = {"status": 0}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            await send(message)

        route = "other"
        try:
            route = self._route(scope)
            await self._handle(route, scope, receive, tracked)
        except Exception as exc:  # never a stack trace out: the type only, in the log too
            logger.error("request to %s failed: %s", route, type(exc).__name__)
            if not sent["status"]:
                await _reply(tracked, 500, "internal error (see the server log)")
        finally:
            if route != "other":
                m = self.state.metrics
                m.requests.labels(route, str(sent["status"] or 500)).inc()
                m.latency.labels(route).observe(time.perf_counter() - t0)

    def _route(self, scope: Scope) -> str:
        """The route's label; the OpenRLHF secret is checked and removed from the scope here,
        so neither the app nor uvicorn's access log ever sees it."""
        path: str = scope["path"]
        if path == OPENRLHF or path.startswith(OPENRLHF + "/"):
            scope["openrlhf_secret"] = path[len(OPENRLHF) + 1 :] if path != OPENRLHF else None
            scope["path"] = OPENRLHF
            scope["raw_path"] = OPENRLHF.encode()
            return OPENRLHF
        if path in SCORING or path in OPEN or path in ("/metrics", "/v1/spec"):
            return path
        return "other"

    async def _handle(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        s = self.state.settings
        if self.state.draining and route not in ("/healthz", "/metrics"):
            await _reply(send, 503, "the server is shutting down", {"retry-after": "1"})
            return
        refusal = self._auth(route, scope)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        if route not in SCORING:
            await self.app(scope, receive, send)
            return
        if self.state.inflight >= s.max_inflight:
            await _reply(
                send,
                429,
                f"too many requests in flight (at most {s.max_inflight}); retry later",
                {"retry-after": str(s.retry_after_s)},
            )
            return
        self.state.inflight += 1
        self.state.metrics.inflight.inc()
        started = {"yes": False}

        async def marking(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["yes"] = True
            await send(message)

        try:
            body = await _read_body(scope, receive, s.max_body_bytes)
            if body is None:
                await _reply(
                    send,
                    413,
                    f"request body over {s.max_body_bytes} bytes; send fewer samples per request "
                    "(or raise the server's --max-body-bytes)",
                )
                return
            try:
                await asyncio.wait_for(self.app(scope, _replay(body), marking), s.request_timeout_s)
            except (TimeoutError, asyncio.TimeoutError):
                if not started["yes"]:
                    await _reply(
                        send,
                        504,
                        f"scoring took longer than the server's {s.request_timeout_s:g}s "
                        "request deadline",
                    )
        finally:
            self.state.inflight -= 1
            self.state.metrics.inflight.dec()

    def _auth(self, route: str, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        if route == OPENRLHF:
            given = scope.pop("openrlhf_secret")
            if self._secret is None:
                if given is None and self._bearer is None:
                    return None  # an open server (loopback, or --insecure)
                return (
                    401 if given is None else 404,
                    f"the OpenRLHF route needs its secret path: set {OPENRLHF_TOKEN_ENV} on the "
                    "server and use --reward.remote_url http://HOST:PORT/openrlhf/<secret>",
                    {},
                )
            if given is None or not hmac.compare_digest(given.encode(), self._secret):
                return 401, "wrong or missing secret path segment", {}
            return None
        if self._bearer is None or route in OPEN:
            return None
        for key, value in scope["headers"]:
            if key == b"authorization" and hmac.compare_digest(value, self._bearer):
                return None
        return (
            401,
            "missing or wrong bearer token (send 'Authorization: Bearer <REWARDHUB_TOKEN>')",
            {"www-authenticate": "Bearer"},
        )


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it is over ``limit`` bytes."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                pass
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    done = False

    async def receive() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected
        return {"type": "http.disconnect"}

    return receive


async def _reply(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
