"""rewardhub.adapters.verl called the way verl's naive reward-loop manager calls it."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

import rewardhub as rh
from rewardhub.adapters import verl
from tests import adapters_support as sup


def verl_style(compute_score: Any, n: int = 64) -> list[dict[str, float]]:
    """What verl's reward loop does: wrap the function in a partial (custom kwargs), check
    ``inspect.iscoroutinefunction`` on it, and gather one keyword call per sample."""
    fn = functools.partial(compute_score)
    assert inspect.iscoroutinefunction(fn)

    async def one(i: int) -> dict[str, float]:
        return await fn(
            data_source="gsm8k" if i % 2 else "math",
            solution_str=f"answer {i}?" if i % 4 == 0 else f"the answer is {i}.",
            ground_truth=str(i),
            extra_info={"index": i, "num_turns": None, "rollout_reward_scores": {}},
        )

    async def batch() -> list[dict[str, float]]:
        return await asyncio.gather(*(one(i) for i in range(n)))

    return asyncio.run(batch())


def test_64_concurrent_calls_become_few_batches_with_stable_keys() -> None:
    with sup.pipeline(delay_s=0.01) as pipe:
        compute_score = verl.make_compute_score(pipe, window_ms=20)
        out = verl_style(compute_score)
        compute_score.batcher.close()
    keys = list(out[0])
    assert keys == [
        "score",
        "correct",
        "style",
        "judge",
        "abstained_correct",
        "abstained_style",
        "abstained_judge",
        "abstained",
    ]
    assert all(list(o) == keys for o in out)  # verl builds its arrays from the first's keys
    assert all(math.isfinite(v) for o in out for v in o.values())  # verl cannot take NaN
    assert sum(sup.Recorder.batches) == 64 and len(sup.Recorder.batches) <= 4
    assert max(sup.Recorder.batches) >= 16
    # each caller got its own row
    assert [o["correct"] for o in out] == [1.0] * 64
    assert [o["abstained_judge"] for o in out] == [float(i % 4 == 0) for i in range(64)]


def test_an_abstention_is_filled_flagged_and_never_beats_failing() -> None:
    with sup.pipeline() as pipe:
        compute_score = verl.make_compute_score(pipe)
        out = verl_style(compute_score, 8)
        compute_score.batcher.close()
    judged, broken = out[1], out[0]  # "the answer is 1." vs "answer 0?" (judge did not answer)
    assert broken["abstained_judge"] == 1.0 and broken["abstained"] == 1.0
    assert broken["judge"] == 0.0  # the judge source's failing value
    assert judged["abstained"] == 0.0 and judged["judge"] > 0
    # breaking the judge scores the judge as failed: never more than an honest answer
    assert broken["judge"] <= min(o["judge"] for o in out if not o["abstained"])


def test_unscorable_total_is_the_failed_row_aggregate() -> None:
    spec = {"sources": [{"id": "judge", "type": "flaky-judge"}], "aggregate": {"method": "maxmin"}}
    with rh.Pipeline(spec, hub=sup.hub()) as pipe:
        cs = verl.make_compute_score(pipe)
        out = asyncio.run(cs(data_source="x", solution_str="why?", ground_truth=None))
        cs2 = verl.make_compute_score(pipe, fill=-1.0, fill_total=-5.0)
        out2 = asyncio.run(cs2(data_source="x", solution_str="why?", ground_truth=None))
    assert out == {"score": 0.0, "judge": 0.0, "abstained_judge": 1.0, "abstained": 1.0}
    assert out2 == {"score": -5.0, "judge": -1.0, "abstained_judge": 1.0, "abstained": 1.0}


def test_sync_variant_batches_verls_executor_threads() -> None:
    with sup.pipeline(delay_s=0.01) as pipe:
        cs = verl.make_compute_score_sync(pipe, window_ms=20)

        async def run() -> list[dict[str, float]]:
            loop = asyncio.get_running_loop()
            return await asyncio.gather(
                *(
                    loop.run_in_executor(
                        None,
                        lambda i=i: cs(data_source="d", solution_str=f"{i}.", ground_truth=str(i)),
                    )
                    for i in range(16)
                )
            )

        out = asyncio.run(run())
        cs.batcher.close()
    assert [o["correct"] for o in out] == [1.0] * 16
    assert len(sup.Recorder.batches) < 16


def test_default_compute_score_reads_the_spec_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {"sources": [{"type": "length", "config": {"target": 5}}], "normalize": "none"}
        )
    )
    verl._default.cache_clear()
    monkeypatch.setenv("REWARDHUB_SPEC", str(path))
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")  # the built-ins only, whatever is installed
    try:
        out = asyncio.run(
            verl.compute_score(data_source="d", solution_str="hello", ground_truth="")
        )
    finally:
        verl._default.cache_clear()
    assert out["score"] == out["brevity"] == 0.0 and out["abstained"] == 0.0
    monkeypatch.delenv("REWARDHUB_SPEC")
    with pytest.raises(rh.SpecError, match=r"REWARDHUB_SPEC=path/to/spec.yaml"):
        verl.make_compute_score()


def test_batch_relative_specs_and_bad_fills_are_refused() -> None:
    with (
        sup.pipeline(normalize="zscore") as pipe,
        pytest.raises(rh.SpecError, match=r"normalize: .*'zscore'.*verl's GDPO"),
    ):
        verl.make_compute_score(pipe)
    with sup.pipeline({"method": "pareto"}) as pipe, pytest.raises(rh.SpecError, match="pareto"):
        verl.make_compute_score(pipe)
    with sup.pipeline() as pipe:
        with pytest.raises(rh.SpecError, match=r"missing \['style', 'judge'\]"):
            verl.make_compute_score(pipe, fill={"correct": 0.0})
        with pytest.raises(rh.SpecError, match="finite"):
            verl.make_compute_score(pipe, fill=math.nan)


def test_prompt_and_metadata_from_verls_arguments() -> None:
    s = verl.to_sample("gsm8k", "42", "42", {"prompt": "q?", "index": 3})
    assert (s.prompt, s.completion, s.reference) == ("q?", "42", "42")
    assert s.metadata == {"prompt": "q?", "index": 3, "data_source": "gsm8k"}
    assert verl.to_sample("d", "x", None, None).prompt == ""
