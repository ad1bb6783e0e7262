"""The ASGI middleware in front of every route: drain, auth, the OpenRLHF secret path, the body
budget (its own deadline and byte limit, before the request takes an in-flight slot), the
in-flight bound, the per-request deadline, metrics, and no stack trace out.

One plain ASGI class (not Starlette's BaseHTTPMiddleware, which costs a task per request).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from rewardhub.server.codec import RequestError, encode
from rewardhub.server.settings import OPENRLHF_TOKEN_ENV
from rewardhub.server.state import ServerState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

logger = logging.getLogger("rewardhub.server")

#: routes that score (body budget, bounded in flight, under the request deadline)
SCORING = frozenset({"/v1/score", "/v1/aggregate", "/openrlhf"})
#: routes open without the bearer token (probes and the API docs)
OPEN = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
#: what the OpenRLHF route's path looks like in metrics and logs
OPENRLHF = "/openrlhf"
#: routes counted in the metrics under their own path (any other path is "other")
_LABELLED = SCORING | OPEN | {"/metrics", "/v1/spec"}
#: a scoring route's handler: the request body in, the JSON answer out (RequestError refuses)
Handler = Callable[[bytes], Awaitable[bytes]]


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


class Guard:
    """Wraps the FastAPI app; see the module docstring."""

    def __init__(
        self, app: ASGIApp, state: ServerState, handlers: dict[str, Handler] | None = None
    ) -> None:
        self.app = app
        self.state = state
        # a scoring POST goes straight to its handler: FastAPI's routing, dependency solving
        # and middleware stack cost more per request than scoring a rule spec
        self.handlers = handlers or {}
        s = state.settings
        self._bearer = f"Bearer {s.token}".encode() if s.token else None
        self._secret = s.openrlhf_token.encode() if s.openrlhf_token else None
        self._secrets = s.secrets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        sent = _Sent(send)
        route = "other"
        try:
            route = self._route(scope)
            await self._handle(route, scope, receive, sent)
        except Exception as exc:  # never a stack trace out: the type only, in the log too
            logger.error("request to %s failed: %s", route, type(exc).__name__)
            if not sent.status:
                await _reply(sent, 500, "internal error (see the server log)")
        finally:
            if route != "other":
                self.state.metrics.observe(route, sent.status or 500, time.perf_counter() - t0)

    def _route(self, scope: Scope) -> str:
        """The route's label; the OpenRLHF secret is checked and removed from the scope here,
        so neither the app nor uvicorn's access log ever sees it."""
        path: str = scope["path"]
        for secret in self._secrets:
            if secret in path:
                self._hide_secrets(scope)  # e.g. //openrlhf/<secret>: a 404, but never logged
                break
        if path == OPENRLHF or path.startswith(OPENRLHF + "/"):
            scope["openrlhf_secret"] = path[len(OPENRLHF) + 1 :] if path != OPENRLHF else None
            scope["path"] = OPENRLHF
            scope["raw_path"] = OPENRLHF.encode()
            return OPENRLHF
        return path if path in _LABELLED else "other"

    async def _handle(self, route: str, scope: Scope, receive: Receive, sent: _Sent) -> None:
        s = self.state.settings
        if self.state.draining and route not in ("/healthz", "/metrics"):
            await _reply(sent, 503, "the server is shutting down", {"retry-after": "1"})
            return
        refusal = self._auth(route, scope)
        if refusal is not None:
            await _reply(sent, *refusal)
            return
        if route not in SCORING:
            await self.app(scope, receive, sent)
            return
        body = await self._body(route, scope, receive, sent)
        if body is None:
            return
        # only a received body takes a slot: a client that trickles costs nobody else one
        if self.state.inflight >= s.max_inflight:
            await _reply(
                sent,
                429,
                f"too many requests in flight (at most {s.max_inflight}); retry later",
                {"retry-after": str(s.retry_after_s)},
            )
            return
        self.state.inflight += 1  # the in-flight gauge reads it when scraped
        handler = self.handlers.get(route) if scope["method"] == "POST" else None
        try:
            if handler is None:
                await _within(self.app(scope, _replay(body), sent), s.request_timeout_s)
                return
            # the deadline covers the answer up to its first byte; the answer is sent after
            try:
                raw, status = await _within(_answer(handler, body), s.request_timeout_s)
            except TimeoutError:
                raw, status = _timed_out(s.request_timeout_s), 504
            await _send_json(sent, status, raw)
        except TimeoutError:  # the app's route (no handler) ran out of time
            if not sent.status:
                await _reply(sent, 504, _timed_out_message(s.request_timeout_s))
        finally:
            self.state.inflight -= 1

    async def _body(self, route: str, scope: Scope, receive: Receive, sent: _Sent) -> bytes | None:
        """The request body, read under its own deadline and byte limit; None once a refusal
        (413, 408) is sent or the client has gone."""
        s = self.state.settings
        m = self.state.metrics
        m.receiving += 1
        try:
            return await _within(_read_body(scope, receive, s.max_body_bytes), s.body_timeout_s)
        except _TooLarge:
            await _reply(
                sent,
                413,
                f"request body over {s.max_body_bytes} bytes; send fewer samples per request "
                "(or raise the server's --max-body-bytes)",
                {"connection": "close"},
            )
        except TimeoutError:
            m.body_timeouts.labels(route).inc()
            await _reply(
                sent,
                408,
                f"the request body did not arrive within the server's {s.body_timeout_s:g}s "
                "body deadline; send it at once (or raise the server's --body-timeout)",
                {"connection": "close"},
            )
        except _Gone:
            pass
        finally:
            m.receiving -= 1
        return None

    def _hide_secrets(self, scope: Scope) -> None:
        path: str = scope["path"]
        for secret in self._secrets:
            path = path.replace(secret, "***")
        scope["path"] = path
        scope["raw_path"] = path.encode()

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


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; raises _TooLarge past ``limit`` bytes, _Gone if the client
    disconnects before the end."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                if int(value) > limit:
                    raise _TooLarge
            except ValueError:
                pass
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")  # the common case: one message
        if len(body) > limit:
            raise _TooLarge
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


async def _within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw`` under a deadline (TimeoutError), without a task of its own on 3.11+."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await aw
    try:  # pragma: no cover (3.10)
        return await asyncio.wait_for(aw, seconds)
    except asyncio.TimeoutError:  # pragma: no cover (3.10: not the builtin TimeoutError)
        raise TimeoutError from None


async def _answer(handler: Handler, body: bytes) -> tuple[bytes, int]:
    """The handler's JSON answer and its status (a RequestError is the refusal's)."""
    try:
        return await handler(body), 200
    except RequestError as exc:
        return encode(exc.body()), exc.status


def _timed_out_message(seconds: float) -> str:
    return f"scoring took longer than the server's {seconds:g}s request deadline"


def _timed_out(seconds: float) -> bytes:
    return encode({"error": _timed_out_message(seconds)})


class _Sent:
    """``send`` that remembers the status it started a response with (0: none yet)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


async def _send_json(
    sent: _Sent, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    """One JSON response straight to the server (``sent`` keeps its status)."""
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if headers:
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    sent.status = status
    await sent.send({"type": "http.response.start", "status": status, "headers": raw})
    await sent.send({"type": "http.response.body", "body": body})


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
    sent: _Sent, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    await _send_json(sent, status, encode({"error": message}), headers)
