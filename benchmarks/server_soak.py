"""Soak of the reward server: many mixed requests with a share of hostile clients.

    python benchmarks/server_soak.py                 # 50,000 requests, 1% hostile
    python benchmarks/server_soak.py --requests 5000

The rule spec of benchmarks/server.py runs in its own process with both tokens set and a 1 s
body deadline. 32 keep-alive clients send ``/v1/score``, the OpenRLHF route and
``/v1/aggregate`` requests; every answer is checked against the local pipeline's. Among them,
1% of the requests come from hostile clients, each on a connection of its own: a body that
trickles (408), an oversize body (413), nesting 100 deep (422), invalid JSON (422), a wrong
OpenRLHF secret (401) and a wrong bearer token (401).

Reported: requests/s, every valid request answered correctly, each hostile kind answered
with its code, the server's RSS after warm-up (10% of the run) against the end (goal ≤ 1.2×),
and its open file descriptors at the same two points (goal: no growth).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server import RULES, exchange, server  # noqa: E402

TOKEN = "soak-bearer-1f4e"
SECRET = "soak-path-8a2b"
CLIENTS = 32
LIMITS = {"body_timeout_s": 1.0, "max_body_bytes": 64 * 1024, "max_depth": 32}
#: each hostile kind and the status it must get
HOSTILE = {"slow": 408, "oversize": 413, "deep": 422, "invalid": 422, "secret": 401, "token": 401}


@dataclass
class Figures:
    requests: int = 0
    seconds: float = 0.0
    wrong: list[str] = field(default_factory=list)
    hostile: dict[str, int] = field(default_factory=dict)
    rss_mb: tuple[float, float] = (0.0, 0.0)
    fds: tuple[int, int] = (0, 0)

    @property
    def rss_ratio(self) -> float:
        return self.rss_mb[1] / self.rss_mb[0]


def _valid_requests(n: int) -> list[tuple[str, dict[str, Any], Any]]:
    """``n`` distinct valid requests over the three routes, each with its expected answer
    from the local pipeline."""
    import rewardhub as rh

    out: list[tuple[str, dict[str, Any], Any]] = []
    with rh.Pipeline.from_spec(RULES, hub=rh.Hub(entry_points=False)) as pipe:
        for i in range(n):
            completion = f"step {i} " * (i % 30) + ("\\boxed{4}" if i % 3 else "")
            sample = rh.Sample(f"q{i}", completion)
            total = float(pipe.score([sample]).total[0])
            kind = i % 10
            if kind < 7:
                body = {"samples": [{"prompt": f"q{i}", "completion": completion}]}
                out.append(("/v1/score", body, total))
            elif kind < 9:
                body = {"query": [f"q{i}{completion}</s>"], "prompts": [f"q{i}"], "labels": [None]}
                out.append((f"/openrlhf/{SECRET}", body, total))
            else:
                records = pipe.score([sample]).vector.to_records()
                out.append(("/v1/aggregate", {"results": records}, total))
    return out


def _raw(path: str, data: bytes, token: str | None = TOKEN) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def _check(path: str, status: int, body: bytes, want: Any) -> str | None:
    if status != 200:
        return f"{path}: {status} {body[:120]!r}"
    got = json.loads(body)
    if path.startswith("/openrlhf"):
        value = got["rewards"][0]
    else:
        value = got["results"][0]["total"]
    if value is None or abs(value - want) > 1e-9:
        return f"{path}: total {value} != {want}"
    return None


async def _hostile(host: str, port: int, kind: str) -> int:
    """One hostile request on its own connection; returns the status it got."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if kind == "slow":  # the head and one byte of a 100-byte body, then nothing
            raw = _raw("/v1/score", b"{" * 100)
            writer.write(raw[: raw.index(b"\r\n\r\n") + 5])
        elif kind == "oversize":
            writer.write(_raw("/v1/score", b"[" + b"0," * 40_000 + b"0]"))
        elif kind == "deep":
            ref = "[" * 100 + "]" * 100
            body = f'{{"samples": [{{"completion": "x", "reference": {ref}}}]}}'.encode()
            writer.write(_raw("/v1/score", body))
        elif kind == "invalid":
            writer.write(_raw("/v1/score", b'{"samples": [{"completion": '))
        elif kind == "secret":
            writer.write(_raw("/openrlhf/not-the-secret", b'{"query": [], "prompts": []}'))
        else:
            writer.write(_raw("/v1/score", b'{"samples": []}', token="wrong-token"))
        head = await reader.readuntil(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _drive(url: str, pid: int, total: int, hostile_share: float, seed: int) -> Figures:
    host, port_text = url.removeprefix("http://").split(":")
    port = int(port_text)
    pool = _valid_requests(min(total, 600))
    rng = random.Random(seed)
    n_hostile = max(len(HOSTILE), round(total * hostile_share))
    kinds = list(itertools.islice(itertools.cycle(HOSTILE), n_hostile))
    plan: list[str | int] = [*kinds, *(i % len(pool) for i in range(total - n_hostile))]
    rng.shuffle(plan)
    warm = max(1, total // 10)
    figures = Figures(requests=total, hostile={k: 0 for k in HOSTILE})
    raws = [_raw(path, json.dumps(body).encode()) for path, body, _ in pool]
    conns = [await asyncio.open_connection(host, port) for _ in range(CLIENTS)]

    async def client(
        todo: Iterator[str | int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for item in todo:
            if isinstance(item, str):
                status = await _hostile(host, port, item)
                if status == HOSTILE[item]:
                    figures.hostile[item] += 1
                else:
                    figures.wrong.append(f"hostile {item}: {status}")
            else:
                path, _, want = pool[item]
                status, body = await exchange(reader, writer, raws[item])
                problem = _check(path, status, body, want)
                if problem:
                    figures.wrong.append(problem)

    async def run(part: list[str | int]) -> tuple[float, int]:
        """Send ``part``, then measure the server idle with the clients' connections open."""
        todo = iter(part)
        await asyncio.gather(*(client(todo, r, w) for r, w in conns))
        return _rss_mb(pid), await _settled_fds(pid)

    loop = asyncio.get_running_loop()
    try:
        t0 = loop.time()
        warm_rss, warm_fds = await run(plan[:warm])
        end_rss, end_fds = await run(plan[warm:])
        figures.seconds = loop.time() - t0
    finally:
        for _, w in conns:
            w.close()
    figures.rss_mb = (warm_rss, end_rss)
    figures.fds = (warm_fds, end_fds)
    return figures


async def _settled_fds(pid: int, polls: int = 200) -> int:
    """The server's fd count once the hostile clients' sockets are closed on its side: the
    same count on consecutive looks (a bounded number of them)."""
    last = _fds(pid)
    for _ in range(polls):
        await asyncio.sleep(0.01)
        now = _fds(pid)
        if now == last:
            return now
        last = now
    return last


def soak(total: int = 50_000, hostile_share: float = 0.01, seed: int = 0) -> Figures:
    """Run the soak against a fresh server process; returns its figures."""
    env = {
        "REWARDHUB_TOKEN": TOKEN,
        "REWARDHUB_OPENRLHF_TOKEN": SECRET,
        "REWARDHUB_BENCH_SETTINGS": json.dumps(LIMITS),
    }
    with server("rules", env) as url:
        pid = server.pid  # type: ignore[attr-defined]
        return asyncio.run(_drive(url, pid, total, hostile_share, seed))


def report(f: Figures) -> None:
    print(f"{f.requests:,} requests in {f.seconds:.1f} s ({f.requests / f.seconds:,.0f} req/s)")
    print(f"  wrong answers: {len(f.wrong)}" + (f" (first: {f.wrong[0]})" if f.wrong else ""))
    print(
        "  hostile, answered as they must be: "
        + ", ".join(f"{k} {n}" for k, n in f.hostile.items())
    )
    print(
        f"  RSS after warm-up {f.rss_mb[0]:.1f} MB, at the end {f.rss_mb[1]:.1f} MB: "
        f"{f.rss_ratio:.2f}× (goal ≤ 1.2: {'ok' if f.rss_ratio <= 1.2 else 'MISSED'})"
    )
    print(
        f"  open fds after warm-up {f.fds[0]}, at the end {f.fds[1]} "
        f"(goal: no growth: {'ok' if f.fds[1] <= f.fds[0] else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--hostile", type=float, default=0.01)
    args = parser.parse_args()
    print(f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    report(soak(args.requests, args.hostile))


if __name__ == "__main__":
    main()
