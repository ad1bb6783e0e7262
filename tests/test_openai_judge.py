"""openai-judge against a fake OpenAI-compatible server on loopback (real HTTP, real retries)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import rewardhub as rh
from tests.openai_support import FakeServer, Reply, chat

pytest.importorskip("httpx")

KEY = "sk-test-5f1d0c9e-very-secret"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JUDGE_KEY", KEY)
    yield


def _pipe(url: str, **config: Any) -> rh.Pipeline:
    conf = {
        "base_url": url,
        "model": "fake",
        "rubric": "be correct",
        "api_key_env": "JUDGE_KEY",
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        **config,
    }
    return rh.Pipeline({"sources": [{"type": "openai-judge", "config": conf}]})


SAMPLES = [rh.Sample(prompt="2+2?", completion="4"), rh.Sample(prompt="3+3?", completion="7")]


def test_rating_parsed_and_key_sent_only_in_the_header() -> None:
    with FakeServer(lambda n, b, h: chat("4")) as srv, _pipe(srv.url) as pipe:
        b = pipe.vector(SAMPLES)
    assert b.values.tolist() == [[4.0], [4.0]]
    assert b.std is not None and b.std.tolist() == [[0.0], [0.0]]
    # the two requests run concurrently: they may arrive in either order
    for _, body, headers in srv.requests:
        assert headers["Authorization"] == f"Bearer {KEY}"
        assert KEY not in json.dumps(body) and "&lt;" not in json.dumps(body)
    contents = sorted(body["messages"][1]["content"] for _, body, _ in srv.requests)
    assert "<answer>\n4\n</answer>" in contents[0] and "<answer>\n7\n</answer>" in contents[1]


def test_429_then_success_retries_after_the_servers_delay() -> None:
    def handler(n: int, body: Any, headers: Any) -> Reply:
        if n < 2:
            return 429, {"Retry-After": "0.2"}, b'{"error": "slow down"}'
        return chat("5")

    with FakeServer(handler) as srv, _pipe(srv.url, max_concurrency=1, backoff_max_s=1.0) as pipe:
        b = pipe.vector(SAMPLES[:1])
    assert b.values.tolist() == [[5.0]]
    times = [t for t, _, _ in srv.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.19 and times[2] - times[1] >= 0.19


def test_500s_until_give_up_abstain_with_the_reason() -> None:
    with (
        FakeServer(lambda n, b, h: (500, {}, b"boom")) as srv,
        _pipe(srv.url, max_retries=3, max_concurrency=1) as pipe,
    ):
        b = pipe.vector(SAMPLES[:1])
    assert math.isnan(b.values[0, 0])
    assert "gave up after 4 attempts; last: HTTP 500" in str(b.reasons[0])
    assert len(srv.requests) == 4


def test_timeout_abstains() -> None:
    def slow(n: int, body: Any, headers: Any) -> Reply:
        time.sleep(1.0)
        return chat("5")

    with FakeServer(slow) as srv, _pipe(srv.url, request_timeout_s=0.2) as pipe:
        t0 = time.monotonic()
        b = pipe.vector(SAMPLES)
        assert time.monotonic() - t0 < 0.9
    assert all(math.isnan(x) for x in b.values[:, 0])
    assert "did not answer within 0.2 s" in str(b.reasons[0])


def test_malformed_json_abstains_but_a_non_rating_answer_fails() -> None:
    def handler(n: int, body: Any, headers: Any) -> Reply:
        completion = body["messages"][1]["content"]
        if "<answer>\n4\n" in completion:
            return 200, {"Content-Type": "application/json"}, b'{"choices": [ {"mess'
        return chat("I refuse to grade this.")

    with FakeServer(handler) as srv, _pipe(srv.url) as pipe:
        b = pipe.vector(SAMPLES)
    assert math.isnan(b.values[0, 0]) and "not JSON" in str(b.reasons[0])
    # the completion derailed the judge: it earns the lowest rating, never an abstention
    assert b.values[1, 0] == 1.0 and "failed: the judge's answer is not a rating" in str(
        b.reasons[1]
    )


def test_key_never_in_output_even_when_the_server_echoes_it() -> None:
    def echo(n: int, body: Any, headers: dict[str, str]) -> Reply:
        if n % 2:
            return 401, {}, f"bad key {headers['Authorization']}".encode()
        return chat(f"rating unclear, your key is {headers['Authorization']}")

    with FakeServer(echo) as srv, _pipe(srv.url, max_concurrency=1) as pipe:
        res = pipe.score(SAMPLES)
    out = json.dumps(
        [res.vector.to_records(), [str(e) for e in res.vector.reasons], str(res.diagnostics)]
    )
    assert "401" in out and "***" in out
    assert KEY not in out


def test_json_mode_and_logprobs() -> None:
    lp = [
        {"token": '{"', "logprob": 0.0, "top_logprobs": []},
        {"token": "rating", "logprob": 0.0, "top_logprobs": []},
        {
            "token": "4",
            "logprob": math.log(0.6),
            "top_logprobs": [
                {"token": "4", "logprob": math.log(0.6)},
                {"token": "5", "logprob": math.log(0.3)},
                {"token": "x", "logprob": math.log(0.1)},
            ],
        },
    ]
    with (
        FakeServer(lambda n, b, h: chat('{"rating": 4}', lp)) as srv,
        _pipe(srv.url, json_mode=True, logprobs=True) as pipe,
    ):
        b = pipe.vector(SAMPLES[:1])
    body = srv.requests[0][1]
    assert body["response_format"] == {"type": "json_object"} and body["logprobs"] is True
    mean = (0.6 * 4 + 0.3 * 5) / 0.9
    assert b.values[0, 0] == pytest.approx(mean)
    assert b.std is not None
    assert b.std[0, 0] == pytest.approx(
        math.sqrt((0.6 * (4 - mean) ** 2 + 0.3 * (5 - mean) ** 2) / 0.9)
    )
    with (
        FakeServer(lambda n, b, h: chat('{"rating": 2}')) as srv,
        _pipe(srv.url, json_mode=True) as pipe,
    ):
        assert pipe.vector(SAMPLES[:1]).values.tolist() == [[2.0]]


def test_concurrency_cap_and_token_bucket() -> None:
    inflight = [0, 0]
    lock = threading.Lock()

    def handler(n: int, body: Any, headers: Any) -> Reply:
        with lock:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        time.sleep(0.05)
        with lock:
            inflight[0] -= 1
        return chat("3")

    many = [rh.Sample(prompt=f"q{i}", completion="a") for i in range(12)]
    with FakeServer(handler) as srv, _pipe(srv.url, max_concurrency=3) as pipe:
        assert (pipe.vector(many).values == 3.0).all()
    assert inflight[1] <= 3
    with (
        FakeServer(lambda n, b, h: chat("3")) as srv,
        _pipe(srv.url, rate_per_s=20, burst=2) as pipe,
    ):
        t0 = time.monotonic()
        pipe.vector(many)
        # 2 at once, then 10 more at 20/s: at least 0.5 s
        assert time.monotonic() - t0 >= 0.45


def test_missing_key_env_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_KEY")
    with pytest.raises(rh.SpecError, match="api_key_env names 'JUDGE_KEY', which is not set"):
        _pipe("http://127.0.0.1:9/v1")


def test_connection_refused_abstains() -> None:
    with _pipe("http://127.0.0.1:9/v1", max_retries=1) as pipe:
        b = pipe.vector(SAMPLES[:1])
    assert math.isnan(b.values[0, 0]) and "gave up after 2 attempts; last: ConnectError" in str(
        b.reasons[0]
    )
