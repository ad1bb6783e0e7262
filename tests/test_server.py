"""The reward server on a live loopback uvicorn, driven by httpx."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import rewardhub as rh
from rewardhub.errors import RewardHubError
from rewardhub.server.app import create_app
from rewardhub.server.settings import ServerSettings, check_bind

from .server_support import live, spec

RULES = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 10}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}
AUTH = {"authorization": "Bearer s3cret-token"}


def _metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


def test_score_matches_the_pipeline_and_carries_outcomes() -> None:
    samples = [rh.Sample("q", "the answer is 4"), rh.Sample("q", "no"), rh.Sample("q", "crash")]
    with rh.Pipeline.from_spec(RULES) as pipe, live(pipe) as url:
        want = pipe.score(samples)
        got = httpx.post(f"{url}/v1/score", json={"samples": [s.to_dict() for s in samples]})
        assert got.status_code == 200
        body = got.json()
        assert body["objectives"] == list(want.vector.objectives)
        for rec, total in zip(body["results"], want.total.tolist()):
            assert rec["total"] == pytest.approx(total)
    with rh.Pipeline.from_spec(spec("checked")) as pipe, live(pipe) as url:
        raw = httpx.post(
            f"{url}/v1/score",
            json={"samples": [{"completion": c} for c in ("ok", "crash", "down")]},
        ).text
        assert "NaN" not in raw  # valid JSON: an abstention is null plus its reason
        ok, failed, down = json.loads(raw)["results"]
        assert ok["total"] == 1.0 and "outcomes" not in ok
        assert failed["outcomes"] == {"score": "failed"} and failed["rewards"]["score"] == 0.0
        assert "crashed the checker" in failed["reasons"]["py"]
        assert down["rewards"]["score"] is None and down["total"] is None
        assert down["outcomes"] == {"score": "unscorable"}
        assert "judge did not answer" in down["unscorable"]


def test_bearer_auth_guards_the_api_but_not_the_probes() -> None:
    with rh.Pipeline.from_spec(RULES) as pipe, live(pipe, token="s3cret-token") as url:
        body = {"samples": [{"completion": "x"}]}
        assert httpx.post(f"{url}/v1/score", json=body).status_code == 401
        wrong = httpx.post(f"{url}/v1/score", json=body, headers={"authorization": "Bearer s3"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert "s3cret" not in wrong.text
        assert httpx.post(f"{url}/v1/score", json=body, headers=AUTH).status_code == 200
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/v1/spec").status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz").json()
        assert ready == {"status": "ready", "sources": ["len", "ans"]}
        assert httpx.get(f"{url}/v1/spec", headers=AUTH).json()["objectives"] == [
            "brevity",
            "format",
        ]
        assert "/v1/score" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_non_loopback_bind_needs_a_token_or_insecure() -> None:
    with pytest.raises(RewardHubError, match="REWARDHUB_TOKEN"):
        check_bind(ServerSettings(host="10.0.0.1"))
    check_bind(ServerSettings(host="10.0.0.1", token="t"))
    check_bind(ServerSettings(host="10.0.0.1", insecure=True))
    check_bind(ServerSettings(host="::1"))


def test_body_limit_schema_errors_and_sample_cap() -> None:
    with (
        rh.Pipeline.from_spec(RULES) as pipe,
        live(pipe, max_body_bytes=2000, max_samples=3) as url,
    ):
        big = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x" * 5000}]})
        assert big.status_code == 413 and "2000 bytes" in big.json()["error"]

        def chunks():  # no content-length: the limit holds on the bytes received
            yield b'{"samples": [{"completion": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        assert httpx.post(f"{url}/v1/score", content=chunks()).status_code == 413
        bad = httpx.post(f"{url}/v1/score", json={"samples": [{"prompt": "p"}]})
        assert bad.status_code == 422 and bad.json()["error"].startswith("samples[0].completion")
        typo = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x", "refrence": 1}]})
        assert typo.status_code == 422 and "samples[0].refrence" in typo.json()["error"]
        many = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x"}] * 4})
        assert many.status_code == 422 and "at most 3" in many.json()["error"]
        weights = httpx.post(
            f"{url}/v1/score", json={"samples": [{"completion": "x"}], "weights": {"nope": 1}}
        )
        assert weights.status_code == 422 and "nope" in weights.json()["error"]
        assert "Traceback" not in weights.text


def test_deadline_gives_504_and_a_burst_gets_429_with_retry_after() -> None:
    slow = rh.Pipeline.from_spec(spec("slow", seconds=1.0))
    with slow, live(slow, request_timeout_s=0.3) as url:
        r = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x"}]}, timeout=10)
        assert r.status_code == 504 and "0.3s" in r.json()["error"]
    pipe = rh.Pipeline.from_spec(spec("slow", seconds=0.5))
    with pipe, live(pipe, max_inflight=2, window_ms=0) as url:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=20) as c:
                return await asyncio.gather(
                    *(
                        c.post(f"{url}/v1/score", json={"samples": [{"completion": str(i)}]})
                        for i in range(8)
                    )
                )

        codes = [r.status_code for r in asyncio.run(burst())]
        refused = [r for r in asyncio.run(burst()) if r.status_code == 429]
        assert set(codes) == {200, 429} and codes.count(200) >= 2
        assert refused and all(r.headers["retry-after"] == "1" for r in refused)


def test_micro_batching_merges_concurrent_requests_and_metrics_parse() -> None:
    # a time-out sends a source to a worker thread: not a cheap spec, so the window holds
    timed = {**RULES, "sources": [{**RULES["sources"][0], "timeout_s": 30}, RULES["sources"][1]]}
    with rh.Pipeline.from_spec(timed) as pipe, live(pipe, window_ms=200, max_batch=64) as url:

        async def many() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=20) as c:
                return await asyncio.gather(
                    *(
                        c.post(f"{url}/v1/score", json={"samples": [{"completion": "a" * i}]})
                        for i in range(16)
                    )
                )

        answers = asyncio.run(many())
        assert all(r.status_code == 200 for r in answers)
        # each answer is its own sample's, whatever batch it rode in
        want = pipe.score([rh.Sample("", "a" * i) for i in range(16)]).total.tolist()
        assert [r.json()["results"][0]["total"] for r in answers] == pytest.approx(want)
        m = _metrics(httpx.get(f"{url}/metrics").text)
        assert m["rewardhub_batch_size_sum"] == 16
        assert m["rewardhub_batch_size_count"] < 8  # 16 requests, a few large batches
        assert m["rewardhub_requests_total|route=/v1/score|status=200"] == 16
        assert m["rewardhub_request_seconds_count|route=/v1/score"] == 16
        assert m["rewardhub_source_seconds_total|source=len"] > 0
        assert "rewardhub_cache_hits_total|tier=memory" in m


def test_a_cheap_spec_is_batched_without_waiting_for_the_window() -> None:
    with rh.Pipeline.from_spec(RULES) as pipe:
        batcher = create_app(pipe, ServerSettings()).state.rewardhub.scorer.batcher
        assert batcher is not None and batcher.eager  # every source runs inline
    with rh.Pipeline.from_spec(spec("checked")) as pipe:
        batcher = create_app(pipe, ServerSettings()).state.rewardhub.scorer.batcher
        assert batcher is not None and not batcher.eager  # a python source: worker threads
    # an hour's window: the requests are answered as soon as they are scored
    with rh.Pipeline.from_spec(RULES) as pipe, live(pipe, window_ms=3_600_000) as url:
        got = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "an answer"}]})
        assert got.status_code == 200
        assert got.json()["results"][0]["total"] == pytest.approx(
            float(pipe.score([rh.Sample("", "an answer")]).total[0])
        )


def test_batch_relative_spec_scores_each_request_as_its_batch() -> None:
    rel = {**RULES, "normalize": {"method": "zscore"}}
    with rh.Pipeline.from_spec(rel) as pipe, live(pipe) as url:
        samples = [{"completion": "a" * i} for i in (1, 5, 9)]
        got = httpx.post(f"{url}/v1/score", json={"samples": samples}).json()["results"]
        want = pipe.score([rh.Sample("", s["completion"]) for s in samples]).total.tolist()
        assert [r["total"] for r in got] == pytest.approx(want)
        orl = httpx.post(f"{url}/openrlhf", json={"query": ["q a"], "prompts": ["q"]})
        assert orl.status_code == 409 and "zscore" in orl.json()["error"]


def test_aggregate_any_method_on_vectors() -> None:
    with rh.Pipeline.from_spec(RULES) as pipe, live(pipe) as url:
        samples = [rh.Sample("", c) for c in ("answer", "a much longer answer here", "x")]
        res = pipe.score(samples)
        records = res.vector.to_records()
        got = httpx.post(f"{url}/v1/aggregate", json={"results": records}).json()
        assert [r["total"] for r in got["results"]] == pytest.approx(res.total.tolist())
        mm = httpx.post(f"{url}/v1/aggregate", json={"results": records, "method": "maxmin"})
        want = pipe.with_aggregator("maxmin").aggregate(res.vector).total.tolist()
        assert mm.json()["method"] == "maxmin"
        assert [r["total"] for r in mm.json()["results"]] == pytest.approx(want)
        records[0]["rewards"]["format"] = None  # an abstention: unscorable total, with a reason
        one = httpx.post(f"{url}/v1/aggregate", json={"results": records}).json()["results"][0]
        assert one["total"] is None and "format" in one["unscorable"]
        bad = httpx.post(f"{url}/v1/aggregate", json={"results": records, "method": "nosuch"})
        assert bad.status_code == 422 and "nosuch" in bad.json()["error"]


def test_a_failed_check_never_beats_a_value_over_http() -> None:
    """The policy's view: crashing the checker, or making it abstain, earns no more than an
    honest answer that fails, in every field a trainer reads."""
    with rh.Pipeline.from_spec(spec("checked")) as pipe, live(pipe) as url:
        body = {"query": ["pcrash", "pdown"], "prompts": ["p", "p"], "labels": [None, None]}
        got = httpx.post(f"{url}/openrlhf", json=body).json()
        assert got["rewards"] == [0.0, 0.0]
        assert got["extra_logs"]["abstained"] == [0.0, 1.0]
        assert all(math.isfinite(x) for x in got["rewards"])


def test_a_crash_is_a_json_500_without_its_details(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def model_dump(self, **kwargs: Any) -> Any:
            raise RuntimeError("detail-that-stays-inside")

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("detail-that-stays-inside")

    with rh.Pipeline.from_spec(RULES) as pipe:
        app = create_app(pipe, ServerSettings())
        pipe.spec = Broken()  # type: ignore[assignment]  # /v1/spec: a route FastAPI serves
        vars(app.state.rewardhub.scorer)["rows"] = boom  # /v1/score: the guard's own path

        async def run() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return [
                    await c.get("/v1/spec"),
                    await c.post("/v1/score", json={"samples": [{"completion": "x"}]}),
                ]

        with caplog.at_level("ERROR", logger="rewardhub.server"):
            answers = asyncio.run(run())
    for r in answers:
        assert r.status_code == 500
        assert r.json() == {"error": "internal error (see the server log)"}
    assert "detail-that-stays-inside" not in caplog.text
    assert "RuntimeError" in caplog.text  # the type only
