"""Eval Protocol rewards written as its users write them (see the package docstring)."""

from __future__ import annotations

from typing import Any

from rewardhub.bridges.eval_protocol import eval_protocol_models

eval_protocol_models()  # the bridge's quiet, offline import, before eval_protocol's own
from eval_protocol.models import EvaluateResult, MetricResult  # noqa: E402
from eval_protocol.rewards.format import format_reward as format_reward  # noqa: E402
from eval_protocol.typed_interface import reward_function  # noqa: E402


@reward_function  # type: ignore[untyped-decorator]
def exact_and_short(messages: list[Any], ground_truth: Any = None, **kwargs: Any) -> Any:
    """A composite reward as Eval Protocol documents them: a score plus named metrics."""
    text = str(messages[-1]["content"] if isinstance(messages[-1], dict) else messages[-1].content)
    if "boom" in text:
        return EvaluateResult(score=0.0, error="sandbox failed to start", is_score_valid=False)
    exact = 1.0 if text.strip().lower() == str(ground_truth).strip().lower() else 0.0
    short = max(0.0, 1.0 - len(text) / 200)
    return EvaluateResult(
        score=0.7 * exact + 0.3 * short,
        reason="weighted exact match and brevity",
        metrics={
            "exact": MetricResult(score=exact, reason="exact match"),
            "short": MetricResult(score=short, reason="brevity"),
        },
    )


@reward_function(mode="batch")  # type: ignore[untyped-decorator]
def rank_in_group(
    rollouts_messages: list[list[Any]], ground_truth: Any = None, **kwargs: Any
) -> Any:
    """Batch mode: the shortest rollout of a prompt's group scores 1."""
    lengths = [
        len(str(m[-1]["content"] if isinstance(m[-1], dict) else m[-1].content))
        for m in rollouts_messages
    ]
    best = min(lengths)
    return [EvaluateResult(score=1.0 if n == best else 0.0, reason="shortest") for n in lengths]
