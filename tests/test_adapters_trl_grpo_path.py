"""The real TRL 1.16 GRPO reward path: an unscorable objective never out-earns a failed one.

``GRPOTrainer._calculate_rewards`` runs on a stand-in trainer (it reads only the attributes
set below), and the advantage code is TRL's own lines, taken from the installed
``_generate_and_score_completions`` (from the unscorable mask to ``nan_to_num``), so a TRL
upgrade that changes either is tested as it is.
"""

from __future__ import annotations

import inspect
import logging
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.adapters.trl import reward_funcs
from rewardhub.testing import plugin_with

torch = pytest.importorskip("torch")
grpo = pytest.importorskip("trl.trainer.grpo_trainer")


class Verifier(rh.RewardSource):
    """correct: 1 for "right", a failed check for "wrong" (failing value -1), could not score
    "down" (the machinery failed)."""

    type = "verifier"
    objectives = ("correct",)
    fail_value = -1.0

    def score(self, samples: list[rh.Sample]) -> Any:
        verdicts = {"wrong": rh.Fail("wrong answer"), "down": rh.Abstain("judge did not answer")}
        return [verdicts.get(s.completion, [1.0]) for s in samples]


class Half(rh.RewardSource):
    type = "half"
    objectives = ("length",)

    def score(self, samples: list[rh.Sample]) -> Any:
        return [[0.5] for _ in samples]


def _advantage_code() -> str:
    """TRL's own lines, from the unscorable mask to ``advantages = nan_to_num(...)``."""
    src = inspect.getsource(grpo.GRPOTrainer._generate_and_score_completions)
    lines = src.splitlines()
    start = next(i for i, ln in enumerate(lines) if "unscorable_mask = " in ln)
    end = next(i for i, ln in enumerate(lines) if "advantages = torch.nan_to_num" in ln)
    return textwrap.dedent("\n".join(lines[start : end + 1]))


@pytest.fixture(autouse=True)
def _plain_trl_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRL warns through accelerate's logger, which needs a launched accelerate state."""
    monkeypatch.setattr(grpo, "logger", logging.getLogger("trl-under-test"))


def trl_advantages(funcs: list[Any], weights: list[float], completions: list[str], agg: str) -> Any:
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(device="cpu", is_main_process=True),
        reward_funcs=funcs,
        reward_processing_classes=[None] * len(funcs),
        reward_func_names=[f.__name__ for f in funcs],
        state=SimpleNamespace(global_step=0),
        args=SimpleNamespace(report_to=[]),
        environments=None,
        _log_completion_extra=lambda *a: None,
        _log_metric=lambda *a: None,
        multi_objective_aggregation=agg,
        reward_weights=torch.tensor(weights),
        scale_rewards="group",
        num_generations=len(completions),
    )
    prompts = ["q"] * len(completions)
    inputs = [{"prompt": "q", "completion": c} for c in completions]
    rewards_per_func = grpo.GRPOTrainer._calculate_rewards(
        trainer, inputs, prompts, completions, [[1]] * len(completions)
    )
    scope = {
        "self": trainer,
        "torch": torch,
        "nanstd": grpo.nanstd,
        "rewards_per_func": rewards_per_func,
        "num_generations": len(completions),
        "device": "cpu",
    }
    exec(_advantage_code(), scope)
    return rewards_per_func, scope["advantages"]


@pytest.mark.parametrize("agg", ["sum_then_normalize", "normalize_then_sum"])
def test_an_unscorable_objective_never_out_earns_a_failed_one(agg: str) -> None:
    hub = rh.Hub(plugins=[plugin_with(Verifier, Half)], entry_points=False)
    spec = {"sources": [{"type": "verifier"}, {"type": "half"}], "normalize": "none"}
    with rh.Pipeline(spec, hub=hub) as pipe:
        funcs, weights = reward_funcs(pipe, log=False)
        per_func, adv = trl_advantages(funcs, weights, ["right", "wrong", "down", "right"], agg)
    # the unscorable sample is None (NaN) in every function: TRL drops it (advantage 0)
    assert torch.isnan(per_func[2]).all()
    assert per_func[1].tolist() == [-1.0, 0.5]  # the failed check keeps its failing value
    assert adv[2] == 0.0
    assert adv[1] < 0.0  # failing is below the group's baseline
    assert adv[2] > adv[1]  # dropped, not rewarded: its 0 is no credit, just no signal
    assert adv[0] > 0.0 and adv[3] > 0.0


def test_fill_policy_gives_the_fill_and_fail_policy_raises() -> None:
    hub = rh.Hub(plugins=[plugin_with(Verifier, Half)], entry_points=False)
    base = {"sources": [{"type": "verifier"}, {"type": "half"}], "normalize": "none"}
    with rh.Pipeline({**base, "on_abstain": {"fill": -2.0}}, hub=hub) as pipe:
        funcs, weights = reward_funcs(pipe, log=False)
        per_func, _ = trl_advantages(funcs, weights, ["right", "down"], "sum_then_normalize")
    assert per_func.tolist() == [[1.0, 0.5], [-2.0, 0.5]]
    with rh.Pipeline({**base, "on_abstain": "fail"}, hub=hub) as pipe:
        funcs, weights = reward_funcs(pipe, log=False)
        with pytest.raises(rh.AbstainError, match="could not be scored"):
            trl_advantages(funcs, weights, ["right", "down"], "sum_then_normalize")


def test_a_not_applicable_cell_stays_none_alone() -> None:
    hub = rh.Hub(plugins=[plugin_with(Verifier, Half)], entry_points=False)
    spec = {
        "sources": [
            {"type": "verifier", "when": "completion != 'prose'"},
            {"type": "half"},
        ],
        "normalize": "none",
    }
    with rh.Pipeline(spec, hub=hub) as pipe:
        funcs, weights = reward_funcs(pipe, log=False)
        per_func, _ = trl_advantages(funcs, weights, ["right", "prose"], "sum_then_normalize")
    assert torch.isnan(per_func[1, 0]) and per_func[1, 1] == 0.5  # scored on what applies
