"""Fuzz every route of the reward server from its own OpenAPI schema (schemathesis), against
`rewardhub serve` in a subprocess with both tokens set: no server error, no hang (each call
has a time-out), every answer matching the schema; then neither secret appears in any log
line or any response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .server_support import serve_subprocess, stop

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

TOKEN = "fuzz-bearer-77a0"
SECRET = "fuzz-path-3c5e"
SPEC: dict[str, Any] = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 10}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}
EXAMPLES = 40  # per operation and per auth mode: a bounded run that CI affords


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside schemathesis' dependencies
def test_fuzz_every_route_from_the_openapi_schema(tmp_path: Path) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    env = {"REWARDHUB_TOKEN": TOKEN, "REWARDHUB_OPENRLHF_TOKEN": SECRET}
    args = ("--log-level", "info", "--request-timeout", "20", "--max-samples", "64")
    proc, url, lines = serve_subprocess(tmp_path, SPEC, env, *args)
    answers: list[str] = []
    try:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        paths = {op.path for op in operations}
        assert paths >= {"/v1/score", "/v1/aggregate", "/openrlhf/{secret}", "/metrics"}
        for op in operations:
            for headers in ({"authorization": f"Bearer {TOKEN}"}, {}):
                _fuzz(op, url, headers, checks, answers)()
    finally:
        stop(proc)
    assert len(answers) >= len(operations) * 2
    log = "".join(lines)
    assert "POST /v1/score" in log  # the access log was on
    for secret in (TOKEN, SECRET):
        assert secret not in log
        assert not [a for a in answers if secret in a]
    assert "Traceback" not in log


def _fuzz(op: Any, url: str, headers: dict[str, str], checks: list[Any], answers: list[str]) -> Any:
    """A hypothesis test calling ``op`` with generated cases; answers are kept."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def call(case: Any) -> None:
        if "secret" in case.path_parameters and headers:
            case.path_parameters["secret"] = SECRET  # the right one, with the bearer token
        response = case.call_and_validate(base_url=url, headers=headers, checks=checks, timeout=30)
        answers.append(response.text)

    return call
