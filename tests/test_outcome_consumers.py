"""What consumers receive per outcome kind: verl and OpenRLHF never see a non-finite number,
/v1/score answers null plus the reason, and /metrics counts each kind apart."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import rewardhub as rh
from rewardhub.adapters import verl
from tests.server_support import HERE, live


def _spec() -> dict[str, Any]:
    def source(sid: str, objective: str) -> dict[str, Any]:
        return {
            "id": sid,
            "type": "python",
            "config": {
                "function": f"{HERE / 'server_support.py'}:huge",
                "objectives": [objective],
            },
        }

    return {
        "sources": [source("x", "x"), source("y", "y")],
        "normalize": "none",
        "aggregate": {"method": "weighted", "weights": {"x": 10.0, "y": 10.0}},
    }


def test_an_overflowing_total_is_unscorable_with_its_reason() -> None:
    with rh.Pipeline.from_spec(_spec()) as pipe:
        res = pipe.score([rh.Sample("q", "big")])
    assert math.isnan(res.total[0])
    assert "overflowed" in res.diagnostics["unscorable"][0]
    rec = res.to_records()[0]
    assert rec["total"] is None and "overflowed" in rec["unscorable"]


def test_verl_never_sees_a_non_finite_number() -> None:
    with rh.Pipeline.from_spec(_spec()) as pipe:
        score = verl.make_compute_score_sync(pipe, fill_total=-1.0)
        out = score(solution_str="big")
        na = score(solution_str="na")
        smuggled = score(solution_str="failed: smuggled")
        score.batcher.close()  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for r in (out, na, smuggled) for v in r.values())
    assert out["score"] == -1.0 and out["abstained"] == 1.0
    # not applicable: no flag, the documented 0.0; the total has nothing to aggregate
    assert na["abstained_x"] == 0.0 and na["x"] == 0.0 and na["abstained"] == 1.0
    # an abstention whose reason looks like a failed check is still an abstention
    assert smuggled["abstained_x"] == 1.0 and smuggled["abstained"] == 1.0


def test_openrlhf_never_sees_a_non_finite_number() -> None:
    pytest.importorskip("torch")
    from rewardhub.adapters.openrlhf import make_reward_func

    with rh.Pipeline.from_spec(_spec()) as pipe:
        func = make_reward_func(pipe, fill_total=-1.0)
        out = func(["q big", "q na"], ["q ", "q "], [None, None])
        func.batcher.close()  # type: ignore[attr-defined]
    assert out["rewards"].tolist() == [-1.0, -1.0]
    for values in out["extra_logs"].values():
        assert all(math.isfinite(v) for v in values.tolist())


def _metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))] = s.value
    return out


def test_score_answers_null_with_the_reason_and_metrics_count_each_kind() -> None:
    with rh.Pipeline.from_spec(_spec()) as pipe, live(pipe, window_ms=0) as url:
        body = {"samples": [{"completion": c} for c in ("big", "na", "failed: smuggled")]}
        got = httpx.post(f"{url}/v1/score", json=body)
        assert got.status_code == 200 and "Infinity" not in got.text and "NaN" not in got.text
        big, na, smuggled = got.json()["results"]
        assert big["total"] is None and "overflowed" in big["unscorable"]
        assert na["outcomes"] == {"x": "not applicable", "y": "not applicable"}
        assert na["total"] is None and na["unscorable"]
        assert smuggled["outcomes"] == {"x": "unscorable", "y": "unscorable"}
        assert smuggled["reasons"] == {"x": "failed: smuggled", "y": "failed: smuggled"}
        m = _metrics(httpx.get(f"{url}/metrics").text)
    assert m["rewardhub_outcomes_total|outcome=not_applicable|source=x"] == 1
    assert m["rewardhub_outcomes_total|outcome=unscorable|source=x"] == 1
    assert "rewardhub_outcomes_total|outcome=failed|source=x" not in m
