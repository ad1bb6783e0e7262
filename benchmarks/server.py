"""The reward server and Ray scale-out, on loopback, each part bounded in count and time.

    python benchmarks/server.py            # all three parts
    python benchmarks/server.py http rm    # some of them (http, rm, ray)
    python benchmarks/server.py http --rounds 5 --requests 10000   # a steadier http figure
    python benchmarks/server.py rm --rounds 3                       # the rm part alternated

1. ``http``: a rule-only spec (length + regex) behind ``POST /v1/score``, with micro-batching
   (the default 5 ms window) and without, 32 concurrent clients (a minimal keep-alive HTTP/1.1
   client: httpx.AsyncClient itself tops out near 200 requests/s here) sending a fixed
   number of one-sample requests, vs a uvicorn
   "hello world" FastAPI app on the same box driven by the same client. Both servers run in
   their own process with the same uvicorn settings. Goals: ≥ 50% of hello-world's
   requests/s, p99 < 50 ms.
2. ``rm``: OpenRLHF-style one-sample requests (``{"query", "prompts", "labels"}``) at 64 in
   flight against the OpenRLHF route, on a tiny random-weight transformer classifier
   (benchmarks/_tiny_rm.py), with micro-batching (``window_ms=5``) vs without
   (``window_ms=0``). Goal: ≥ 5× the throughput.
3. ``ray``: ``rewardhub.distributed.score_dataset`` on 10k rows vs the local pipeline, for the
   rule spec and for the tiny classifier, with Ray's start-up timed apart.

Every server is started on 127.0.0.1 at a free port in a subprocess and stopped at the end.
The figures are only as good as the machine is quiet: run it on an idle box.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # module level: the routes' annotations are resolved here

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _tiny_rm as tiny_rm  # noqa: E402  (after the path set-up above)

NO_CACHE = {"memory_items": 0}  # every request brings a new completion
RULES: dict[str, Any] = {
    "objectives": ["brevity", "format"],
    "sources": [
        {"id": "brevity", "type": "length", "config": {"target": 200, "tolerance": 50}},
        {
            "id": "format",
            "type": "regex",
            "config": {"patterns": [{"pattern": "\\\\boxed\\{[^}]+\\}", "objective": "format"}]},
        },
    ],
    "normalize": "none",
    "aggregate": {"method": "weighted"},
    "cache": NO_CACHE,
}
TINY_RM: dict[str, Any] = tiny_rm.SPEC
PART_LIMIT_S = 60.0  # no part runs longer; a part that hits it reports what it measured


# --- the servers (run as `python benchmarks/server.py --serve KIND PORT`) ---


def _hello_app() -> Any:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/score")
    async def hello(request: Request) -> dict[str, str]:
        await request.body()  # read the same body the reward server parses
        return {"hello": "world"}

    return app


def _serve(kind: str, port: int) -> None:
    """Serve one app on 127.0.0.1:port until SIGTERM (the same uvicorn settings for all)."""
    import uvicorn

    import rewardhub as rh
    from rewardhub.server.app import create_app
    from rewardhub.server.run import make_server
    from rewardhub.server.settings import ServerSettings

    # tokens from $REWARDHUB_TOKEN / $REWARDHUB_OPENRLHF_TOKEN (the soak sets them), limits
    # as JSON in $REWARDHUB_BENCH_SETTINGS
    settings = ServerSettings.from_env(
        port=port,
        window_ms=0 if kind.endswith("-single") else 5,
        max_inflight=4096,
        **json.loads(os.environ.get("REWARDHUB_BENCH_SETTINGS", "{}")),
    )
    if kind == "hello":
        config = uvicorn.Config(
            _hello_app(), host="127.0.0.1", port=port, log_level="warning", server_header=False
        )
        uvicorn.Server(config).run()
        return
    spec = RULES if kind.startswith("rules") else TINY_RM
    with rh.Pipeline.from_spec(spec, hub=rh.Hub(entry_points=False)) as pipe:
        if spec is TINY_RM:
            import torch

            # one intra-op thread: on a small box shared with the event loop, torch's second
            # OpenMP thread makes a one-sample forward pass ~50× slower (its barrier waits
            # for a core), which would flatter micro-batching; both modes get the same setting
            torch.set_num_threads(1)
            pipe.score([rh.Sample("", "warm up")])  # build the model before the clock starts
        make_server(create_app(pipe, settings), settings, log_level="warning").run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(kind: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A server of ``kind`` in a subprocess on a free loopback port; yields its base URL
    (``server.pid`` holds the process id while it runs)."""
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, str(port)],
        cwd=ROOT,
        env={
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path[1:]]),
        },
    )
    server.pid = proc.pid  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # torch and the model load slowly on a busy box
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the {kind} server exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):  # httpx only to wait for it
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start within 180 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the load generator ---


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """One HTTP/1.1 keep-alive request on an open connection: (status code, body)."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    return (await exchange(reader, writer, raw))[0]


async def _load(
    url: str, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[float, list[float], int]:
    """Send ``bodies`` with ``concurrency`` requests in flight, one keep-alive connection per
    client: (seconds, latencies, errors). A minimal HTTP/1.1 client (requests encoded before
    the clock starts), so the client's own cost stays small next to the server's."""
    host, _, rest = url.removeprefix("http://").partition(":")
    port, _, path = rest.partition("/")
    raws = [
        (
            f"POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data
        for data in (json.dumps(b).encode() for b in bodies)
    ]
    latencies: list[float] = []
    errors = 0
    todo = iter(raws)
    deadline = time.monotonic() + PART_LIMIT_S / 2
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        for raw in todo:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            status = await _request(reader, writer, raw)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    try:
        # one request per connection first, so start-up stays out of the figures
        await asyncio.gather(*(_request(r, w, raws[0]) for r, w in conns))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(r, w) for r, w in conns))
        return time.perf_counter() - t0, latencies, errors
    finally:
        for _, w in conns:
            w.close()


def _mean_batch(url: str) -> float:
    """The mean pipeline batch size the server reports on /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    sums = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name in ("rewardhub_batch_size_sum", "rewardhub_batch_size_count"):
                sums[sample.name] = sample.value
    return sums["rewardhub_batch_size_sum"] / max(sums["rewardhub_batch_size_count"], 1)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _line(name: str, seconds: float, lat: list[float], errors: int) -> float:
    rps = len(lat) / seconds if seconds else float("nan")
    print(
        f"  {name:34} {len(lat):5d} req {rps:8.0f} req/s   p50 {_pct(lat, 0.5) * 1e3:7.1f} ms"
        f"   p99 {_pct(lat, 0.99) * 1e3:7.1f} ms   errors {errors}"
    )
    return rps


def bench_http(requests: int = 2000, concurrency: int = 32, rounds: int = 2) -> None:
    print(
        f"1. rule-only /v1/score vs hello world: {concurrency} clients, {requests} requests, "
        f"{rounds} rounds"
    )
    bodies = [
        {"samples": [{"prompt": f"q{i}", "completion": f"step {i} " * (i % 30) + "\\boxed{4}"}]}
        for i in range(requests)
    ]
    figures: dict[str, list[tuple[float, list[float]]]] = {
        "hello": [],
        "rules": [],
        "rules-single": [],
    }
    with server("hello") as hello, server("rules") as rules, server("rules-single") as single:
        for _ in range(rounds):  # alternate, so drift on a shared machine hits all alike
            for kind, url in (("hello", hello), ("rules", rules), ("rules-single", single)):
                seconds, lat, errors = asyncio.run(_load(f"{url}/v1/score", bodies, concurrency))
                _line(kind, seconds, lat, errors)
                figures[kind].append((len(lat) / seconds, lat))
    base_rps, _ = max(figures["hello"], key=lambda f: f[0])
    for kind in ("rules", "rules-single"):
        rps, lat = max(figures[kind], key=lambda f: f[0])
        p99 = _pct(lat, 0.99)
        ratio = rps / base_rps
        print(
            f"  best {kind}: {rps:.0f} vs {base_rps:.0f} req/s = {ratio:.2f} of hello world "
            f"(goal ≥ 0.5: {'ok' if ratio >= 0.5 else 'MISSED'}); p99 {p99 * 1e3:.1f} ms "
            f"(goal < 50 ms: {'ok' if p99 < 0.05 else 'MISSED'})"
        )
        # each round's ratio against hello world in the same round: the spread of the noise
        each = sorted(f[0] / h[0] for f, h in zip(figures[kind], figures["hello"]))
        print(
            f"  {kind} / hello world per round: median {each[len(each) // 2]:.2f}, "
            f"range {each[0]:.2f}–{each[-1]:.2f}"
        )


def bench_rm(requests: int = 1280, concurrency: int = 64, rounds: int = 1) -> None:
    print(
        f"2. OpenRLHF route, tiny classifier: {concurrency} in flight, {requests} requests, "
        f"{rounds} round(s)"
    )
    bodies = [
        {
            "query": [f"Q{i}: 2+2? response {i} " + "x" * (i % 40)],
            "prompts": [f"Q{i}: 2+2?"],
            "labels": ["4"],
        }
        for i in range(requests)
    ]
    rps: dict[str, list[float]] = {"rm-batched": [], "rm-single": []}
    with server("rm-batched") as batched, server("rm-single") as single:
        for _ in range(rounds):  # alternate, so drift on a shared machine hits both alike
            for kind, url in (("rm-batched", batched), ("rm-single", single)):
                seconds, lat, errors = asyncio.run(_load(f"{url}/openrlhf", bodies, concurrency))
                rps[kind].append(_line(kind, seconds, lat, errors))
        for kind, url in (("rm-batched", batched), ("rm-single", single)):
            print(f"  {kind:34} mean pipeline batch {_mean_batch(url):.1f} samples")
    gain = max(rps["rm-batched"]) / max(rps["rm-single"])
    print(f"  micro-batching gain: {gain:.1f}× (goal ≥ 5×: {'ok' if gain >= 5 else 'MISSED'})")
    if rounds > 1:
        each = sorted(b / s for b, s in zip(rps["rm-batched"], rps["rm-single"]))
        print(
            f"  gain per round: median {each[len(each) // 2]:.1f}×, "
            f"range {each[0]:.1f}–{each[-1]:.1f}×"
        )


def bench_ray(rows: int = 10_000) -> None:
    import numpy as np
    import ray

    import rewardhub as rh
    from rewardhub.distributed import score_dataset

    print(f"3. Ray Data score_dataset vs the local pipeline, {rows} rows")
    items = [
        {"prompt": f"q{i}", "completion": f"step {i} " * (i % 30) + "\\boxed{4}"}
        for i in range(rows)
    ]
    samples = [rh.Sample(r["prompt"], r["completion"]) for r in items]
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    start = time.perf_counter() - t0
    print(f"  ray.init (local, {os.cpu_count()} CPUs): {start:.1f} s")
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        for name, spec in (("rules", RULES), ("tiny classifier", TINY_RM)):
            hub = rh.Hub(entry_points=False)
            with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
                if spec is TINY_RM:
                    pipe.score(samples[:8])  # the model is built once in either case
                t0 = time.perf_counter()
                local = pipe.score(samples)
                local_s = time.perf_counter() - t0
            times = {}
            for n in (rows // 10, rows):  # two sizes: start-up and per-row cost apart
                t0 = time.perf_counter()
                out = score_dataset(
                    ray.data.from_items(items[:n]), spec, hub=hub, batch_size=1000
                ).take_all()
                times[n] = time.perf_counter() - t0
            # the model's floats depend a little on each batch's padding, hence the tolerance
            got = np.array([o["total"] for o in out])
            np.testing.assert_allclose(got, local.total, rtol=1e-5, atol=1e-6)
            per_row = (times[rows] - times[rows // 10]) / (rows - rows // 10)
            startup = times[rows] - rows * per_row
            local_row = local_s / rows
            print(
                f"  {name:16} local {local_s:6.2f} s ({local_row * 1e6:6.1f} µs/row)   Ray "
                f"{times[rows // 10]:6.2f} s for {rows // 10}, {times[rows]:6.2f} s for {rows}: "
                f"start-up ≈ {startup:5.1f} s + {per_row * 1e6:6.1f} µs/row   "
                f"local/Ray {local_s / times[rows]:.2f}"
            )
            if per_row < local_row:
                print(
                    f"  {'':16} Ray pays off beyond ≈ {startup / (local_row - per_row):,.0f} rows"
                )
            else:
                print(f"  {'':16} Ray does not pay off on this machine (per row ≥ local)")
    finally:
        ray.shutdown()


def main(argv: list[str]) -> None:
    if argv[:1] == ["--serve"]:
        _serve(argv[1], int(argv[2]))
        return
    # --rounds N (http, rm) and --requests N (http); defaults: the http part 2 rounds of 2000
    # requests, the rm part one round
    options: dict[str, int] = {"requests": 2000}
    parts = []
    args = iter(argv)
    for arg in args:
        if arg in ("--rounds", "--requests"):
            options[arg[2:]] = int(next(args))
        else:
            parts.append(arg)
    parts = parts or ["http", "rm", "ray"]
    print(f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for part in parts:
        if part == "http":
            bench_http(requests=options["requests"], rounds=options.get("rounds", 2))
        elif part == "rm":  # --requests is the http part's; the rm part keeps its size
            bench_rm(rounds=options.get("rounds", 1))
        else:
            bench_ray()


if __name__ == "__main__":
    main(sys.argv[1:])
