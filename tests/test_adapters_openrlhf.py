"""The OpenRLHF reward_func file, loaded and called the way OpenRLHF 0.11 does."""

from __future__ import annotations

import asyncio
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.adapters.openrlhf import make_reward_func, split_query
from tests import adapters_support as sup

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parent.parent


def load_like_openrlhf(path: Path) -> Any:
    """SingleTurnAgentExecutor: importlib from the file path, then the ``reward_func`` name."""
    spec = importlib.util.spec_from_file_location("reward_func", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


def fetch_like_openrlhf(
    reward_func: Any, queries: list[str], prompts: list[str], labels: list[Any]
) -> Any:
    """_fetch_rewards_via_func: one sample per call, each in a thread, gathered."""

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(
                asyncio.to_thread(
                    reward_func, queries[i : i + 1], prompts[i : i + 1], labels[i : i + 1]
                )
                for i in range(len(queries))
            )
        )

    return asyncio.run(run())


PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_example_file_loads_and_answers_like_a_reward_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REWARDHUB_SPEC", raising=False)
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")  # the built-ins only, whatever is installed
    reward_func = load_like_openrlhf(ROOT / "examples" / "openrlhf_reward_func.py")
    good, bad = "The answer is \\boxed{4}.<|im_end|>", "no box here"
    out = fetch_like_openrlhf(reward_func, [PROMPT + good, PROMPT + bad], [PROMPT] * 2, ["4"] * 2)
    for o in out:
        assert set(o) == {"rewards", "scores", "extra_logs"}
        assert isinstance(o["rewards"], torch.Tensor) and o["rewards"].shape == (1,)
        assert torch.equal(o["rewards"], o["scores"])
        assert set(o["extra_logs"]) == {
            "format",
            "brevity",
            "abstained_format",
            "abstained_brevity",
            "abstained",
        }
        assert all(v.shape == (1,) for v in o["extra_logs"].values())
    assert out[0]["extra_logs"]["format"].item() == 1.0
    assert out[1]["extra_logs"]["format"].item() == 0.0
    assert out[0]["rewards"].item() > out[1]["rewards"].item()
    reward_func.batcher.close()


def test_concurrent_single_sample_calls_share_batches_and_rows() -> None:
    with sup.pipeline(delay_s=0.01) as pipe:
        reward_func = make_reward_func(pipe, window_ms=20)
        n = 32
        responses = [f"it is {i}?</s>" if i % 4 == 0 else f"it is {i}.</s>" for i in range(n)]
        out = fetch_like_openrlhf(
            reward_func, [PROMPT + r for r in responses], [PROMPT] * n, [str(i) for i in range(n)]
        )
        reward_func.batcher.close()
    assert len(sup.Recorder.batches) < n // 2 and sum(sup.Recorder.batches) == n
    assert [o["extra_logs"]["correct"].item() for o in out] == [1.0] * n
    # the end token was stripped, so the response ends with '.' where it should
    assert [o["extra_logs"]["style"].item() for o in out] == [float(i % 4 != 0) for i in range(n)]
    flags = [o["extra_logs"]["abstained_judge"].item() for o in out]
    assert flags == [float(i % 4 == 0) for i in range(n)]
    assert all(math.isfinite(o["rewards"].item()) for o in out)  # OpenRLHF cannot take NaN


def test_a_query_without_its_prompt_is_unscorable_not_a_free_reward() -> None:
    with sup.pipeline() as pipe:
        reward_func = make_reward_func(pipe)
        honest = reward_func([PROMPT + "it is 4."], [PROMPT], ["4"])
        # OpenRLHF truncated the prompt: the response cannot be told apart from the prompt
        lost = reward_func(["...truncated... it is 4."], [PROMPT], ["4"])
        reward_func.batcher.close()
    assert lost["extra_logs"]["abstained"].item() == 1.0
    assert all(
        lost["extra_logs"][f"abstained_{o}"].item() == 1.0 for o in ("correct", "style", "judge")
    )
    assert lost["rewards"].item() < honest["rewards"].item()
    with pytest.raises(ValueError, match="must match one to one"):
        make_reward_func(sup.pipeline())(["a", "b"], ["a"], ["x"])


def test_split_query() -> None:
    assert split_query("<s>PROMPT answer</s>", "PROMPT") == " answer"
    assert split_query("PROMPT a<|im_end|>\n<|endoftext|>", "PROMPT") == " a"
    assert split_query("other", "PROMPT") is None
    assert split_query("all of it", "") == "all of it"


def test_missing_spec_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REWARDHUB_SPEC", raising=False)
    with pytest.raises(rh.SpecError, match="REWARDHUB_SPEC"):
        make_reward_func()
