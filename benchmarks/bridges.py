"""Bridge overhead: each framework's rule-like reward on 1,000 samples, through rewardhub vs
called directly the framework's own way.

    python benchmarks/bridges.py [openenv openjudge eval-protocol verifiers]

Ours: the bridge source's ``score`` (the goal row), and for information a whole pipeline over
it (no cache, no normalisation, weighted sum: the engine's own per-sample bookkeeping, the
same for every source, comes on top). Baseline: the same reward called as that framework's
users call it, building its inputs from the same samples:

- OpenEnv: ``rubric(action, observation)`` per sample, reading the named sub-rubrics;
- OpenJudge: its ``GradingRunner.arun`` over the samples as dicts;
- Eval Protocol: the ``@reward_function`` called per sample with chat messages;
- verifiers: ``Task.score`` on one-turn traces, all samples concurrently.

Goal: ratio ≤ 1.2 for each. Times are CPU time of the process (all threads), since wall
time on a shared machine mostly measures the other jobs. A framework that is not installed is
skipped.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# the repository first, and not this folder: benchmarks/verifiers.py would shadow the package
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import rewardhub as rh  # noqa: E402 - after the sys.path fix
from benchmarks._common import interleaved, report  # noqa: E402
from rewardhub.bridges._common import chat  # noqa: E402

N = 1000
GOAL = 1.2
NO_CACHE = {"memory_items": 0}


def samples(n: int = N) -> list[rh.Sample]:
    answers = ["4", "paris", "9", "42"]
    out = []
    for i in range(n):
        ref = answers[i % 4]
        completion = ref if i % 3 else f"I think the answer is {i} " * (1 + i % 5)
        out.append(rh.Sample(prompt=f"question {i}?", completion=completion, reference=ref))
    return out


Calls = tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]]


def bridged(
    source_type: str, config: dict[str, Any], weights: dict[str, float], batch: list[rh.Sample]
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The bridge source alone (``score``), and a whole pipeline over it."""
    pipe = pipeline(source_type, config, weights)
    source = pipe.engine.sources[0].source
    return (lambda: source.score(batch)), (lambda: pipe.score(batch))


def pipeline(source_type: str, config: dict[str, Any], weights: dict[str, float]) -> rh.Pipeline:
    return rh.Pipeline.from_spec(
        {
            "objectives": list(weights),
            "sources": [{"id": "b", "type": source_type, "config": config}],
            "normalize": "none",
            "aggregate": {"method": "weighted", "weights": weights},
            "cache": NO_CACHE,
        }
    )


def openenv(batch: list[rh.Sample]) -> Calls:
    from openenv.core.env_server.types import Observation

    from rewardhub.bridges.openenv import observation_metadata
    from tests.bridge_examples import openenv as ex

    config = {
        "rubric": "tests.bridge_examples.openenv:weighted",
        "components": {"exact": "rubric_0", "brevity": "rubric_1"},
        "total": None,
    }
    calls = bridged("openenv-rubric", config, {"exact": 0.7, "brevity": 0.3}, batch)
    rubric = ex.weighted()

    def direct() -> list[tuple[float, float, float]]:
        out = []
        for s in batch:
            obs = Observation(done=True, metadata=dict(observation_metadata(s)))
            total = rubric(s.completion, obs)
            out.append((total, rubric.rubric_0.last_score, rubric.rubric_1.last_score))
        return out

    return (*calls, direct)


def openjudge(batch: list[rh.Sample]) -> Calls:
    from rewardhub.bridges.openjudge import sample_data
    from tests.bridge_examples import openjudge as ex

    config = {
        "graders": {
            "exact": {"grader": "tests.bridge_examples.openjudge:exact"},
            "length": {"grader": "tests.bridge_examples.openjudge:length"},
        }
    }
    calls = bridged("openjudge", config, {"exact": 0.8, "length": 0.2}, batch)
    runner = ex.direct_runner()
    return (*calls, lambda: asyncio.run(runner.arun([sample_data(s) for s in batch])))


def eval_protocol(batch: list[rh.Sample]) -> Calls:
    from tests.bridge_examples import eval_protocol as ex

    config = {
        "function": "tests.bridge_examples.eval_protocol:exact_and_short",
        "metrics": ["exact", "short"],
        "score": None,
    }
    calls = bridged("eval-protocol", config, {"exact": 0.7, "short": 0.3}, batch)

    def direct() -> list[Any]:
        return [ex.exact_and_short(messages=chat(s), ground_truth=s.reference) for s in batch]

    return (*calls, direct)


def verifiers(batch: list[rh.Sample]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    import verifiers.v1 as vf
    from pydantic import TypeAdapter
    from verifiers.v1.graph import MessageNode
    from verifiers.v1.trace import AgentInfo, TraceTask

    from tests.bridge_examples.verifiers import MathData, MathTask

    config = {"task": "tests.bridge_examples.verifiers:MathTask", "total": None}
    calls = bridged("verifiers", config, {"brevity": 0.2, "correct": 1.0}, batch)
    messages = TypeAdapter(list[vf.Message])
    agent = AgentInfo(config=vf.AgentConfig(), name="bench", trainable=False)  # built once

    async def one(s: rh.Sample) -> float:
        data = MathData(prompt=str(s.prompt), answer=str(s.reference))
        task = MathTask(data)
        msgs = messages.validate_python(chat(s))
        trace = vf.Trace(
            task=TraceTask(type="MathTask", data=data, key=task.key, hash=task.hash),
            agent=agent.model_copy(),
            nodes=[
                MessageNode(parent=i - 1 if i else None, message=m, sampled=i == len(msgs) - 1)
                for i, m in enumerate(msgs)
            ],
        )
        await task.score(trace)
        return float(trace.reward)

    async def direct() -> list[float]:
        return list(await asyncio.gather(*(one(s) for s in batch)))

    return (*calls, lambda: asyncio.run(direct()))


BENCHES = {
    "openenv": ("openenv", openenv),
    "openjudge": ("openjudge", openjudge),
    "eval-protocol": ("eval_protocol", eval_protocol),
    "verifiers": ("verifiers", verifiers),
}


def main(names: list[str]) -> None:
    batch = samples()
    rows = []
    for name in names or list(BENCHES):
        module, make = BENCHES[name]
        if importlib.util.find_spec(module) is None:
            print(f"{name}: not installed (pip install 'rewardhub[{name}]'), skipped")
            continue
        source, pipe, direct = make(batch)
        ours, base = interleaved(source, direct, 9, time.process_time)
        rows.append(
            (f"{name}: bridge source vs direct", ours, base, f"≤{GOAL}", ours <= GOAL * base)
        )
        ours, base = interleaved(pipe, direct, 9, time.process_time)
        rows.append((f"{name}: whole pipeline vs direct", ours, base, "(info)", True))
    print(f"{N} samples, CPU time (ms) of the process, best of 9 interleaved runs")
    report(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
