"""Sources and specs shared by the adapter tests (tests/test_adapters_*.py)."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from pydantic import BaseModel

import rewardhub as rh
import rewardhub.testing


class Recorder(rh.RewardSource):
    """correct: 1 when the reference is in the completion; style: 1 when it ends with '.'.

    Records each batch size; ``delay_s`` is a fixed cost per batch (a model forward)."""

    type = "recorder"
    objectives = ("correct", "style")
    batches: ClassVar[list[int]] = []
    lock = threading.Lock()

    class Config(BaseModel):
        delay_s: float = 0.0

    def score(self, samples: list[rh.Sample]) -> Any:
        with self.lock:
            Recorder.batches.append(len(samples))
        time.sleep(self.config.delay_s)
        return [
            [
                float(s.reference is not None and str(s.reference) in s.completion),
                float(s.completion.rstrip().endswith(".")),
            ]
            for s in samples
        ]


class Judge(rh.RewardSource):
    """judge: could not score ('judge did not answer') any completion containing '?'."""

    type = "flaky-judge"
    objectives = ("judge",)
    abstained: ClassVar[list[int]] = [0]

    def score(self, samples: list[rh.Sample]) -> Any:
        Judge.abstained[0] += sum("?" in s.completion for s in samples)
        return [
            rh.Abstain("judge did not answer")
            if "?" in s.completion
            else [min(len(s.completion), 20) / 20]
            for s in samples
        ]


def hub() -> rh.Hub:
    return rh.Hub([rewardhub.testing.plugin_with(Recorder, Judge)], entry_points=False)


def spec(
    aggregate: dict[str, Any] | None = None, delay_s: float = 0.0, **extra: Any
) -> dict[str, Any]:
    return {
        "sources": [
            {"id": "rec", "type": "recorder", "config": {"delay_s": delay_s}},
            {"id": "judge", "type": "flaky-judge"},
        ],
        "aggregate": aggregate or {"method": "weighted", "weights": {"correct": 2.0}},
        **extra,
    }


def pipeline(aggregate: dict[str, Any] | None = None, **kw: Any) -> rh.Pipeline:
    Recorder.batches.clear()
    Judge.abstained[0] = 0
    return rh.Pipeline(spec(aggregate, **kw), hub=hub())
