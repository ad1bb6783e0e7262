"""What the guard and the routes of one server share (its own module, so neither imports
the other)."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field

from rewardhub.server.metrics import Metrics
from rewardhub.server.scorer import Scorer
from rewardhub.server.settings import ServerSettings


@dataclass
class ServerState:
    """Settings, metrics, the scorer, the worker threads for CPU-bound steps, and counters."""

    settings: ServerSettings
    metrics: Metrics
    scorer: Scorer
    workers: cf.ThreadPoolExecutor = field(
        default_factory=lambda: cf.ThreadPoolExecutor(2, thread_name_prefix="rewardhub-cpu")
    )
    """runs request parsing, /v1/aggregate and large response encoding off the event loop;
    few threads, so a flood of heavy requests queues (and times out) instead of multiplying"""
    inflight: int = 0
    draining: bool = False

    def __post_init__(self) -> None:
        self.metrics.count_inflight(lambda: self.inflight)

    def close(self) -> None:
        self.scorer.close()
        self.workers.shutdown(wait=False, cancel_futures=True)
