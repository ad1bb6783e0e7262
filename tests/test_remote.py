"""The ``remote`` source and the clients, against live loopback servers with failures
injected: a closed port, 500s, time-outs. Each abstains with the reason; nothing hangs."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import rewardhub as rh
from rewardhub.client import AsyncClient, Client, RemoteError, to_batch

from .server_support import live, spec

RULES = {"sources": [{"id": "len", "type": "length", "config": {"target": 10}}]}


def remote_spec(url: str, objectives: list[str], **config: object) -> dict[str, object]:
    return {
        "sources": [
            {
                "id": "far",
                "type": "remote",
                "config": {"url": url, "objectives": objectives, **config},
            }
        ]
    }


@contextmanager
def raw_server(handler: str) -> Iterator[str]:
    """A bare ASGI app on loopback: ``"500"`` answers 500 to everything, ``"hang"`` never
    answers (for the time-outs). Counts the requests it got."""
    import uvicorn

    hits = {"n": 0}

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        hits["n"] += 1
        if handler == "hang":
            await asyncio.sleep(30)
        await send({"type": "http.response.start", "status": 500, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"boom"})  # type: ignore[operator]

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}#{id(hits)}"
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=20)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_remote_source_equals_the_remote_pipeline() -> None:
    with rh.Pipeline.from_spec(RULES) as far, live(far, token="tk") as url:
        samples = [rh.Sample("q", "x" * i) for i in range(5)]
        with rh.Pipeline.from_spec(
            remote_spec(url, ["brevity"], token_env="RH_TEST_TOKEN")
        ) as near:
            mp = pytest.MonkeyPatch()
            mp.setenv("RH_TEST_TOKEN", "tk")
            try:
                got = near.score(samples)
            finally:
                mp.undo()
            assert got.total.tolist() == pytest.approx(far.score(samples).total.tolist())
            # without its token the remote refuses (401): an abstention with the reason
            res = near.score([rh.Sample("q", "new")])
            assert math.isnan(res.total[0])
            assert "RH_TEST_TOKEN" in res.vector.reasons[0]["far"]
        with Client(url, token="tk") as c:
            answer = c.score(samples)
            assert to_batch(answer).values[:, 0].tolist() == pytest.approx(
                far.score(samples).vector.values[:, 0].tolist()
            )
        with Client(url) as anonymous, pytest.raises(RemoteError, match="HTTP 401"):
            anonymous.score(samples)


def test_remote_failed_check_stays_failed_and_unscorable_abstains() -> None:
    with (
        rh.Pipeline.from_spec(spec("checked")) as far,
        live(far) as url,
        rh.Pipeline.from_spec(remote_spec(url, ["score"], fail_values={"score": -1.0})) as near,
    ):
        res = near.score([rh.Sample("", c) for c in ("ok", "crash", "down")])
        assert res.vector.values[:, 0].tolist()[0] == 1.0
        assert res.vector.failed[1, 0] and res.vector.values[1, 0] == -1.0
        assert "crashed the checker" in res.vector.reasons[1]["far"]
        assert res.vector.unscorable[2, 0] and math.isnan(res.total[2])
        assert "judge did not answer" in res.vector.reasons[2]["far"]
        assert max(res.total[1], -1.0) <= res.total[0]


@pytest.mark.parametrize("failure", ["closed", "500", "hang"])
def test_remote_failures_abstain_with_the_reason_and_do_not_hang(failure: str) -> None:
    @contextmanager
    def target() -> Iterator[str]:
        if failure == "closed":
            yield closed_port()
        else:
            with raw_server(failure) as url:
                yield url.split("#")[0]

    with target() as url:
        config = {"timeout_s": 0.3, "retries": 2, "backoff_s": 0.05}
        with rh.Pipeline.from_spec(remote_spec(url, ["score"], **config)) as near:
            t0 = time.monotonic()
            res = near.score([rh.Sample("", "a"), rh.Sample("", "b")])
            took = time.monotonic() - t0
        assert took < 5, f"{failure}: took {took:.1f}s"
        assert np_all_nan(res.vector.values) and all(math.isnan(t) for t in res.total)
        reason = res.vector.reasons[0]["far"]
        assert reason.startswith(f"remote {url}")
        want = {"closed": "ConnectError", "500": "HTTP 500", "hang": "Timeout"}[failure]
        assert want in reason
        assert not res.vector.failed.any()  # the machinery failed: never a failed check, never 0


def test_the_spec_deadline_bounds_retries() -> None:
    with raw_server("hang") as url:
        url = url.split("#")[0]
        spec_ = remote_spec(url, ["score"], timeout_s=10, retries=5)
        spec_["sources"][0]["timeout_s"] = 0.5  # type: ignore[index]
        with rh.Pipeline.from_spec(spec_) as near:
            t0 = time.monotonic()
            res = near.score([rh.Sample("", "a")])
            assert time.monotonic() - t0 < 3
        assert res.vector.unscorable[0, 0], res.vector.reasons


def test_async_client_retries_then_raises() -> None:
    url = closed_port()

    async def go() -> None:
        async with AsyncClient(url, retries=2, backoff_s=0.01) as c:
            with pytest.raises(RemoteError, match="ConnectError"):
                await c.score([rh.Sample("", "x")])

    asyncio.run(go())


def np_all_nan(values: object) -> bool:
    import numpy as np

    return bool(np.isnan(np.asarray(values)).all())


def test_url_credentials_never_reach_a_reason_log_or_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port().rsplit(":", 1)[1]
    url = f"http://svc:S3cretPass@127.0.0.1:{port}"
    with rh.Pipeline.from_spec(remote_spec(url, ["score"], timeout_s=0.3, retries=0)) as near:
        res = near.score([rh.Sample("", "a")])
    reason = res.vector.reasons[0]["far"]
    assert reason.startswith(f"remote http://***@127.0.0.1:{port}") and "ConnectError" in reason
    with pytest.raises(rh.SpecError) as bad:
        rh.Pipeline.from_spec(remote_spec("ftp://svc:S3cretPass@host", ["score"]))
    with pytest.raises(rh.RewardHubError) as client:
        Client("ftp://u:S3cretPass@host")
    text = " ".join([reason, str(bad.value), str(client.value), caplog.text])
    assert "S3cretPass" not in text and "svc:" not in text


def _scripted(answers: list[object]) -> tuple[object, list[float]]:
    """An httpx transport answering from ``answers`` (a status with headers, or an
    exception to raise), recording each request's time-out."""
    import httpx

    seen: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        got = answers.pop(0)
        if isinstance(got, Exception):
            raise got
        status, headers = got  # type: ignore[misc]
        return httpx.Response(status, headers=headers, json={"ok": status})

    return handle, seen


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_both_clients_follow_the_same_retry_rules(kind: str) -> None:
    """Transport errors and 5xx/429 are retried (Retry-After honoured), a 4xx is raised at
    once with its status, the last error is raised when tries run out, and a deadline in
    the past sends nothing."""
    import httpx

    def call(answers: list[object], **kw: object) -> tuple[object, list[float]]:
        handle, seen = _scripted(answers)
        args = {"retries": 2, "backoff_s": 0.0, "timeout": 5.0}
        if kind == "sync":
            c = Client("http://x", **args)
            c._http = httpx.Client(transport=httpx.MockTransport(handle))
            try:
                return c.request("GET", "/v1/spec", **kw), seen  # type: ignore[arg-type]
            except RemoteError as exc:
                return exc, seen

        async def go() -> object:
            a = AsyncClient("http://x", **args)
            a._http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
            try:
                return await a.request("GET", "/v1/spec", **kw)  # type: ignore[arg-type]
            except RemoteError as exc:
                return exc

        return asyncio.run(go()), seen

    boom = httpx.ConnectError("refused")
    got, seen = call([boom, (503, {"retry-after": "0"}), (200, {})])
    assert got == {"ok": 200} and seen == [5.0, 5.0, 5.0]
    got, seen = call([(404, {}), (200, {})])
    assert isinstance(got, RemoteError) and got.status == 404 and len(seen) == 1
    got, seen = call([boom, (429, {}), (500, {})])
    assert isinstance(got, RemoteError) and got.status == 500 and len(seen) == 3
    got, seen = call([boom, boom, boom])
    assert isinstance(got, RemoteError) and "ConnectError" in str(got) and got.status is None
    got, seen = call([(200, {})], deadline=time.monotonic() - 1)
    assert isinstance(got, RemoteError) and "no time left" in str(got) and seen == []
    got, seen = call([(200, {})], deadline=time.monotonic() + 1.0)
    assert got == {"ok": 200} and 0 < seen[0] <= 1.0
