"""Clients of a rewardhub server (extra ``server``): :class:`Client` (sync) and
:class:`AsyncClient`, over httpx, with time-outs and retries (exponential backoff with jitter)
on connection errors, time-outs, 429 and 5xx answers. A request that still fails raises
:class:`RemoteError` with the reason (the ``remote`` source turns it into an abstention)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardhub._optional import require
from rewardhub._redact import strip_url_credentials
from rewardhub._retry import Backoff
from rewardhub.errors import RewardHubError
from rewardhub.types import RewardBatch, Sample

#: answers worth another try: the server is busy, draining or failed on its side
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class RemoteError(RewardHubError):
    """A server could not be reached or refused the request; ``status`` is None when no
    answer came (connection refused, time-out)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _payload(samples: Sequence[Sample | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [s.to_dict() if isinstance(s, Sample) else dict(s) for s in samples]


def to_batch(answer: Mapping[str, Any]) -> RewardBatch:
    """The reward vector of a /v1/score answer (null → NaN, outcomes kept)."""
    return RewardBatch.from_records(answer["results"], answer["objectives"])


def _error(exc: Exception) -> RemoteError:
    name = type(exc).__name__
    text = strip_url_credentials(str(exc)).strip().splitlines()
    return RemoteError(f"{name}: {text[0]}" if text and text[0] else name)


def _answer(response: Any) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            message = response.json().get("error", "")
        except ValueError:
            message = ""
        raise RemoteError(
            f"HTTP {response.status_code}" + (f": {message}" if message else ""),
            response.status_code,
        )
    try:
        data = response.json()
    except ValueError:
        raise RemoteError("the server's answer is not JSON", response.status_code) from None
    if not isinstance(data, dict):
        raise RemoteError("the server's answer is not a JSON object", response.status_code)
    return data


class _Base:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise RewardHubError(
                f"url must start with http:// or https://, got {strip_url_credentials(url)!r}"
            )
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retry = Backoff(retries, backoff_s, max_backoff_s)

    def _attempts(self, deadline: float | None) -> Generator[_Send | _Wait, Any, dict[str, Any]]:
        """The retry rules without the I/O, shared by both clients: yields a request to send
        (with its time-out) or a wait, is sent the response or the transport error, and
        returns the answer or raises the last error."""
        last: RemoteError | None = None
        for attempt in range(self.retry.retries + 1):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            got = yield _Send(self.timeout if left is None else min(self.timeout, left))
            retry_after = None
            if isinstance(got, Exception):
                last = _error(got)
            else:
                retry_after = got.headers.get("retry-after")
                try:
                    return _answer(got)
                except RemoteError as exc:
                    if exc.status not in RETRY_STATUS:
                        raise
                    last = exc
            pause = self.retry.pause(attempt, retry_after, deadline)
            if pause is None:
                break
            yield _Wait(pause)
        if last is None:
            raise RemoteError("no time left for the request")
        raise last


@dataclass(frozen=True)
class _Send:
    timeout: float


@dataclass(frozen=True)
class _Wait:
    seconds: float


class Client(_Base):
    """Sync client: ``Client(url, token=...).score(samples)`` → the /v1/score answer."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        httpx = require("httpx", "server", "rewardhub.client")
        self._http = httpx.Client(headers=self.headers, timeout=self.timeout)
        self._errors = (httpx.TransportError,)

    def request(
        self, method: str, path: str, json: Any = None, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """One request with retries (the async client's rules: ``Retry-After`` is honoured,
        ``deadline``, a ``time.monotonic()`` value, bounds every attempt and every wait)."""
        plan = self._attempts(deadline)
        step = next(plan)
        try:
            while True:
                if isinstance(step, _Wait):
                    time.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    got: Any = self._http.request(
                        method, self.url + path, json=json, timeout=step.timeout
                    )
                except self._errors as exc:
                    got = exc
                step = plan.send(got)
        except StopIteration as done:
            answer: dict[str, Any] = done.value
            return answer

    def score(
        self,
        samples: Sequence[Sample | Mapping[str, Any]],
        weights: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"samples": _payload(samples)}
        if weights is not None:
            body["weights"] = dict(weights)
        return self.request("POST", "/v1/score", body)

    def aggregate(self, results: Sequence[Mapping[str, Any]], **options: Any) -> dict[str, Any]:
        """Totals of reward records (``method=``, ``params=``, ``weights=`` optional)."""
        return self.request("POST", "/v1/aggregate", {"results": list(results), **options})

    def spec(self) -> dict[str, Any]:
        return self.request("GET", "/v1/spec")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """Async client: ``await AsyncClient(url).score(samples)``. Bound to the event loop it is
    first used on (httpx's rule); ``async with`` closes it."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        httpx = require("httpx", "server", "rewardhub.client")
        self._http = httpx.AsyncClient(headers=self.headers, timeout=self.timeout)
        self._errors = (httpx.TransportError,)

    async def request(
        self, method: str, path: str, json: Any = None, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """One request with retries; ``deadline`` (a ``time.monotonic()`` value) bounds every
        attempt and every wait, so the whole call ends by then."""
        plan = self._attempts(deadline)
        step = next(plan)
        try:
            while True:
                if isinstance(step, _Wait):
                    await asyncio.sleep(step.seconds)
                    step = plan.send(None)
                    continue
                try:
                    got: Any = await self._http.request(
                        method, self.url + path, json=json, timeout=step.timeout
                    )
                except self._errors as exc:
                    got = exc
                step = plan.send(got)
        except StopIteration as done:
            answer: dict[str, Any] = done.value
            return answer

    async def score(
        self,
        samples: Sequence[Sample | Mapping[str, Any]],
        weights: Mapping[str, float] | None = None,
        *,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"samples": _payload(samples)}
        if weights is not None:
            body["weights"] = dict(weights)
        return await self.request("POST", "/v1/score", body, deadline=deadline)

    async def aggregate(
        self, results: Sequence[Mapping[str, Any]], **options: Any
    ) -> dict[str, Any]:
        return await self.request("POST", "/v1/aggregate", {"results": list(results), **options})

    async def spec(self) -> dict[str, Any]:
        return await self.request("GET", "/v1/spec")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
