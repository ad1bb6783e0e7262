"""Ray scale-out: score_dataset equals the local pipeline; `score --ray` writes what `score`
writes; serve --ray answers like the plain server. A local Ray with 2 CPUs, shut down after."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import rewardhub as rh

from .server_support import HERE, live

ray = pytest.importorskip("ray")

SPEC = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 20}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, inside ray
def test_score_dataset_equals_the_local_pipeline(local_ray: None) -> None:
    from rewardhub.distributed import RECORD, score_dataset

    rows = [
        {"prompt": f"q{i}", "completion": ("answer " if i % 3 else "") + "x" * (i % 40)}
        for i in range(1000)
    ]
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    out = score_dataset(ray.data.from_items(rows), SPEC, batch_size=200).take_all()
    with rh.Pipeline.from_spec(SPEC) as pipe:
        want = pipe.score([rh.Sample(r["prompt"], r["completion"]) for r in rows])
    assert [o["prompt"] for o in out] == [r["prompt"] for r in rows]
    np.testing.assert_allclose([o["total"] for o in out], want.total)
    np.testing.assert_allclose([o["format"] for o in out], want.vector["format"])
    assert [json.loads(o[RECORD]) for o in out] == want.to_records()


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_score_dataset_over_a_read_task_does_not_hang(local_ray: None, tmp_path: Path) -> None:
    """A dataset read from files needs CPUs for its read tasks: a fixed pool of 2 one-CPU
    actors on a 2-CPU Ray took them all, and the run waited forever."""
    from rewardhub.distributed import score_dataset

    rows = [{"prompt": f"q{i}", "completion": "answer " * (i % 2) + "x" * i} for i in range(50)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    out = score_dataset(ray.data.read_json(str(src)), SPEC, actors=2).take_all()
    with rh.Pipeline.from_spec(SPEC) as pipe:
        want = pipe.score([rh.Sample(r["prompt"], r["completion"]) for r in rows])
    np.testing.assert_allclose([o["total"] for o in out], want.total)


def test_score_dataset_refuses_batch_relative_specs() -> None:
    from rewardhub.distributed import score_dataset
    from rewardhub.errors import SpecError

    with pytest.raises(SpecError, match="zscore"):
        score_dataset(None, {**SPEC, "normalize": {"method": "zscore"}})


# a spec with every outcome kind: values, a failed check, an abstention (unscorable total)
OUTCOMES_SPEC = {
    "sources": [
        *SPEC["sources"],
        {
            "id": "chk",
            "type": "python",
            "config": {
                "function": f"{HERE / 'server_support.py'}:checked",
                "objectives": ["checked"],
            },
        },
    ],
    "aggregate": {"method": "weighted"},
}


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_score_cli_on_ray_equals_plain_score(local_ray: None, tmp_path: Path) -> None:
    """`rewardhub score SPEC INPUT --ray -o OUT` writes the very bytes the plain command does
    (same lines, same order, stale fields dropped, a bad line set aside) and the same summary."""
    from typer.testing import CliRunner

    from rewardhub.cli import build_app

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(OUTCOMES_SPEC))
    lines = []
    for i in range(400):
        completion = ["crash", "down", "héllo ünïcode answer"][i % 3] if i % 7 == 0 else ""
        row = {"prompt": f"q{i}", "completion": completion or "answer " * (i % 3) + "x" * i}
        if i == 5:
            row["total"] = 99.0  # a stale field from an earlier run: dropped, not kept
        lines.append(json.dumps(row, ensure_ascii=False))
        if i == 10:
            lines += ["", '{"prompt": "no completion"}']  # a blank line, a rejected line
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    app = build_app(rh.Hub())
    outputs, tables = {}, {}
    for name, extra in (("plain", []), ("ray", ["--ray"])):
        out = tmp_path / f"{name}.jsonl"
        args = [
            "score",
            str(spec),
            str(src),
            "-o",
            str(out),
            "--skip-invalid",
            "--chunk-size",
            "64",
        ]
        res = runner.invoke(app, [*args, *extra])
        assert res.exit_code == 0, res.output
        outputs[name] = out.read_bytes()
        tables[name] = res.output[res.output.index("rewards per objective") :].splitlines()[:-1]
        assert "1 malformed line(s) set aside" in res.output
    assert outputs["ray"] == outputs["plain"]
    assert tables["ray"] == tables["plain"]
    records = [json.loads(x) for x in outputs["ray"].decode().splitlines()]
    assert len(records) == 401 and "total" in records[5] and records[5]["total"] != 99.0
    assert {"failed", "unscorable"} <= {v for r in records for v in r.get("outcomes", {}).values()}


def test_score_cli_refuses_options_ray_would_ignore(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rewardhub.cli import build_app

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "q", "completion": "a"}\n')
    args = ["score", str(spec), str(src), "-o", str(tmp_path / "o.jsonl"), "--ray"]
    res = CliRunner().invoke(build_app(rh.Hub()), [*args, "--weights", "length=2"])
    assert res.exit_code != 0 and "--weights" in res.output and "--ray" in res.output
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_serve_on_ray_answers_like_the_plain_server(local_ray: None, tmp_path: Path) -> None:
    """`serve --ray` (serve_on_ray) answers /v1/score, /v1/aggregate and the OpenRLHF route
    with what the plain server answers, auth included."""
    import httpx
    from ray import serve

    from rewardhub.distributed import serve_on_ray
    from rewardhub.server.settings import ServerSettings

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(OUTCOMES_SPEC))
    samples = [{"prompt": "q", "completion": c} for c in ("answer xx", "crash", "down", "x" * 30)]
    requests = [
        ("/v1/score", {"samples": samples}),
        ("/v1/score", {"samples": samples[:2], "weights": {"format": 3.0}}),
        ("/v1/score", {"samples": [{"prompt": "q"}]}),  # 422 naming the field
        ("/openrlhf", {"query": ["Q: hi answer yes"], "prompts": ["Q: hi"], "labels": [None]}),
    ]
    auth = {"Authorization": "Bearer tok-ray-1"}
    secret = "orl-ray-secret-5d1e"

    def answers(url: str) -> list[tuple[int, object]]:
        got = []
        with httpx.Client(base_url=url, timeout=60) as c:
            for path, body in requests:
                path = f"/openrlhf/{secret}" if path == "/openrlhf" else path
                r = c.post(path, json=body, headers=auth)
                got.append((r.status_code, r.json()))
            r = c.post("/v1/score", json=requests[0][1])  # no token
            got.append((r.status_code, r.json()))
        return got

    settings = ServerSettings(
        port=_free_port(), token="tok-ray-1", openrlhf_token=secret, window_ms=2
    )
    with (
        rh.Pipeline.from_spec(OUTCOMES_SPEC) as pipe,
        live(pipe, token="tok-ray-1", openrlhf_token=secret) as url,
    ):
        want = answers(url)
    assert want[3][0] == 200 and want[3][1]["extra_logs"]["abstained"] == [0.0]
    assert want[2][0] == 422 and want[-1][0] == 401
    try:
        serve_on_ray(spec, settings, replicas=1, blocking=False)
        got = answers(f"http://127.0.0.1:{settings.port}")
        for odd in (f"//openrlhf/{secret}", f"/OPENRLHF/{secret}"):  # paths no route takes
            r = httpx.post(f"http://127.0.0.1:{settings.port}{odd}", json={}, timeout=60)
            assert r.status_code >= 400 and secret not in r.text
    finally:
        serve.shutdown()
    assert got == want
    # neither Ray Serve's proxy nor its replicas log either secret
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    leaked = [
        p.name
        for p in logs.rglob("*")
        if p.is_file() and any(s in p.read_bytes() for s in (secret.encode(), b"tok-ray-1"))
    ]
    assert not leaked


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
