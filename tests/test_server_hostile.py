"""The server under hostile clients: trickled bodies, heavy requests that must stay off the
event loop, requests that try to move shared state, bad input of every kind, and secrets in
log lines. Each server is a live uvicorn on loopback; every wait is a bounded request loop."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from uvicorn.logging import AccessFormatter

import rewardhub as rh
from rewardhub.server.run import Scrub

from .server_support import live, metrics, spec

RULES: dict[str, Any] = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 10}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}
TOKEN = "hostile-bearer-4b1d"
SECRET = "hostile-path-9e2c"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _wait_for(url: str, key: str, value: float, polls: int = 2000) -> None:
    """Poll /metrics (a bounded loop of requests) until ``key`` reads ``value``."""
    for _ in range(polls):
        if metrics(url, **AUTH).get(key) == value:
            return
    raise AssertionError(f"{key} never reached {value}")


def _trickler(url: str) -> socket.socket:
    """A client that sends the head of a scoring request and one byte of its body, then
    nothing more."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=60)
    conn.sendall(
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{".encode()
    )
    return conn


def test_trickling_bodies_hold_no_slot_and_get_408() -> None:
    with (
        rh.Pipeline.from_spec(RULES) as pipe,
        live(pipe, max_inflight=2, body_timeout_s=3, token=TOKEN) as url,
    ):
        slow = [_trickler(url) for _ in range(3)]
        try:
            _wait_for(url, "rewardhub_bodies_receiving", 3)
            # three bodies on their way, more than --max-inflight: the others are served
            ok = httpx.post(
                f"{url}/v1/score", json={"samples": [{"completion": "x"}]}, headers=AUTH
            )
            assert ok.status_code == 200
            for conn in slow:  # each trickler is cut off with 408 once its body deadline passes
                head = conn.recv(4096)
                assert head.startswith(b"HTTP/1.1 408"), head
                assert b"3s body deadline" in head + conn.recv(4096)
        finally:
            for conn in slow:
                conn.close()
        m = metrics(url, **AUTH)
        assert m["rewardhub_body_timeouts_total|route=/v1/score"] == 3
        assert m["rewardhub_requests_total|route=/v1/score|status=408"] == 3
        assert m["rewardhub_bodies_receiving"] == 0
        assert m["rewardhub_inflight_requests"] == 0


def test_a_huge_openrlhf_request_does_not_block_the_loop() -> None:
    """8 MB of end tokens: the response is split off the query in linear time, on a worker
    thread, while the loop keeps answering (quadratic on the loop, it took minutes)."""
    with rh.Pipeline.from_spec(spec("checked")) as pipe, live(pipe) as url:
        query = "P ok" + "</s>" * 2_000_000
        got: list[httpx.Response] = []
        big = threading.Thread(
            target=lambda: got.append(
                httpx.post(
                    f"{url}/openrlhf",
                    json={"query": [query], "prompts": ["P"], "labels": [None]},
                    timeout=120,
                )
            )
        )
        big.start()
        try:
            _wait_for(url, "rewardhub_inflight_requests", 1)
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        finally:
            big.join(timeout=120)
        assert got[0].status_code == 200 and got[0].json()["rewards"] == [1.0]


def test_split_query_is_the_plain_definition() -> None:
    """The linear end-token strip gives what stripping one token at a time gives."""
    from rewardhub.adapters.openrlhf import END_TOKENS, split_query

    def plain(query: str, prompt: str) -> str | None:
        at = query.find(prompt) if prompt else 0
        if at < 0:
            return None
        response = query[at + len(prompt) :]
        stripped = True
        while stripped:
            stripped = False
            for tok in END_TOKENS:
                if response.rstrip().endswith(tok):
                    response = response.rstrip()[: -len(tok)]
                    stripped = True
        return response

    rng = np.random.default_rng(0)
    parts = ["a", " ", "\n", "</s>", "<eos>", "<|im_end|>", "P", "s>", "<"]
    for _ in range(3000):
        query = "".join(rng.choice(parts, size=int(rng.integers(0, 12))).tolist())
        for prompt in ("", "P", "a", "zz"):
            assert split_query(query, prompt) == plain(query, prompt), (query, prompt)


class Held(rh.Aggregator):
    """Holds its batch until the test lets it go (an aggregation that takes long)."""

    method = "held"
    release = threading.Event()

    def aggregate(self, values: np.ndarray, ctx: rh.Context) -> rh.Aggregation:
        assert Held.release.wait(120), "the test never released the aggregation"
        return rh.Aggregation(np.nansum(values, axis=1))


class HeldPlugin:
    @rh.hookimpl
    def register_aggregators(self, registry: rh.AggregatorRegistry) -> None:
        registry.add(Held)


@pytest.fixture
def held_pipe() -> Iterator[rh.Pipeline]:
    Held.release.clear()
    hub = rh.Hub(plugins=[HeldPlugin()], entry_points=False)
    with rh.Pipeline.from_spec(RULES, hub=hub) as pipe:
        yield pipe
    Held.release.set()


def _records(pipe: rh.Pipeline, n: int = 4) -> list[dict[str, Any]]:
    return pipe.score([rh.Sample("", "answer" * i) for i in range(n)]).vector.to_records()


def test_aggregate_runs_off_the_loop(held_pipe: rh.Pipeline) -> None:
    with live(held_pipe) as url:
        body = {"results": _records(held_pipe), "method": "held"}
        got: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: got.append(httpx.post(f"{url}/v1/aggregate", json=body, timeout=120))
        )
        slow.start()
        try:
            _wait_for(url, "rewardhub_inflight_requests", 1)
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200  # while it runs
        finally:
            Held.release.set()
            slow.join(timeout=120)
        assert got[0].status_code == 200 and got[0].json()["method"] == "held"


def test_aggregate_is_under_the_request_deadline(held_pipe: rh.Pipeline) -> None:
    with live(held_pipe, request_timeout_s=0.5) as url:
        body = {"results": _records(held_pipe), "method": "held"}
        late = httpx.post(f"{url}/v1/aggregate", json=body, timeout=60)
        Held.release.set()
        assert late.status_code == 504 and "0.5s" in late.json()["error"]
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_aggregate_never_moves_the_running_statistics() -> None:
    running = {**RULES, "normalize": {"method": "running"}}
    samples = [{"completion": "answer " * i} for i in range(1, 6)]
    with rh.Pipeline.from_spec(running) as pipe, live(pipe) as url:
        first = httpx.post(f"{url}/v1/score", json={"samples": samples}).json()["results"]
        state = pipe.state_dict()
        huge = [{"rewards": {"brevity": 1e200, "format": 1e200}}] * 1000
        # normalize: true asks for the running statistics to be applied: the very state a
        # client must not move (without it the server refuses: the spec normalises)
        agg = httpx.post(f"{url}/v1/aggregate", json={"results": huge, "normalize": True})
        assert agg.status_code == 200
        assert pipe.state_dict() == state  # the client's records went into a copy
        again = httpx.post(f"{url}/v1/score", json={"samples": samples}).json()["results"]
        totals = [r["total"] for r in again]
        assert all(t is not None and t != 0.0 for t in totals[1:])
        assert totals != [0.0] * len(totals)
        assert len(first) == len(again)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


BAD_BODIES: list[tuple[str, Any]] = [
    ("/v1/score", {"samples": [{"completion": "x", "reference": _nested(500)}]}),
    ("/v1/score", {"samples": [{"completion": "x", "reference": _nested(100)}]}),
    ("/v1/score", {"samples": [{"completion": "x", "metadata": {"m": _nested(100)}}]}),
    ("/v1/score", {"samples": [{"completion": "x"}], "weights": {"format": "1e999"}}),
    ("/v1/score", {"samples": "x"}),
    ("/v1/score", {"samples": [{"completion": 5}]}),
    ("/v1/score", {"samples": [{"completion": "x", "prompt": [{"role": 1}]}]}),
    ("/v1/score", {"samples": [{"completion": "x", "prompt": [{"role": "user"}]}]}),
    ("/v1/aggregate", {"results": [{"rewards": _nested(100)}]}),
    ("/v1/aggregate", {"results": [{"rewards": {"format": "high"}}]}),
    ("/v1/aggregate", {"results": [{"rewards": {"format": 1}}], "method": "nosuch"}),
    ("/v1/aggregate", {"results": [{"rewards": {"format": 1}}], "params": {"x": _nested(99)}}),
    ("/v1/aggregate", {"results": [{"rewards": {"format": 1}, "outcomes": {"format": "?"}}]}),
    ("/openrlhf", {"query": ["P a"], "prompts": ["P"], "labels": [_nested(100)]}),
    ("/openrlhf", {"query": ["P a"], "prompts": ["P", "Q"]}),
    ("/openrlhf", {"query": "P a", "prompts": ["P"]}),
]
RAW_BODIES = [
    b'{"samples": [{"completion": "\\ud800"}]}',  # a lone surrogate
    b'{"samples": [{"completion": "x", "reference": 1' + b"0" * 5000 + b"}]}",  # a huge int
    b'{"samples": [{"completion": "x"}], "weights": {"format": NaN}}',
    b'{"samples": [{"completion": "x"',  # cut short
    b"",
    b"\xff\xfe",
]


def test_bad_input_is_a_4xx_never_a_5xx() -> None:
    with rh.Pipeline.from_spec(RULES) as pipe, live(pipe) as url, httpx.Client() as c:
        for path, body in BAD_BODIES:
            r = c.post(f"{url}{path}", json=body)
            assert r.status_code == 422, (path, r.status_code, r.text[:200])
            assert "Traceback" not in r.text
        for raw in RAW_BODIES:
            r = c.post(f"{url}/v1/score", content=raw)
            assert r.status_code == 422, (raw[:40], r.status_code, r.text[:200])
        deep = c.post(
            f"{url}/v1/score",
            json={"samples": [{"completion": "x", "reference": _nested(100)}]},
        ).json()
        assert deep["error"].startswith("samples[0].reference: nested deeper than 32")
        ok = c.post(
            f"{url}/v1/score", json={"samples": [{"completion": "x", "reference": _nested(30)}]}
        )
        assert ok.status_code == 200
        assert c.post(f"{url}/v1/score", json={"samples": []}).json()["results"] == []
        m = metrics(url)
        assert not any("status=5" in k for k in m), [k for k in m if "status=5" in k]


def test_the_log_scrub_keeps_uvicorn_access_lines_whole() -> None:
    """A secret in a path no route takes (so the guard's rewrite never saw it): the access
    line still prints, with the secret replaced."""
    scrub = Scrub([SECRET, TOKEN])
    fmt = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    for path in (f"//openrlhf/{SECRET}", f"/OPENRLHF/{SECRET}", f"/x?t={TOKEN}"):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "POST", path, "1.1", 404),
            None,
        )
        assert scrub.filter(record)
        line = fmt.format(record)
        assert SECRET not in line and TOKEN not in line
        assert "***" in line and "404" in line and "POST" in line
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "%d %s", (SECRET,), None)
    assert scrub.filter(broken)  # a line that cannot be formatted is withheld, not raised
    assert SECRET not in logging.Formatter().format(broken)


def test_detached_pipeline_keeps_the_state_but_never_writes_it() -> None:
    running = {**RULES, "normalize": {"method": "running"}}
    with rh.Pipeline.from_spec(running) as pipe:
        pipe.score([rh.Sample("", "answer " * i) for i in range(1, 6)])
        state = pipe.state_dict()
        view = pipe.detached()
        assert view.state_dict() == state  # it starts from the shared statistics
        view.aggregate(rh.RewardBatch(np.full((3, 2), 7.0), pipe.objectives))
        assert view.state_dict() != state and pipe.state_dict() == state
        assert view.engine is pipe.engine  # the same sources and caches
