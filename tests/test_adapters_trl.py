"""rewardhub.adapters.trl inside real TRL trainers (GRPO, RLOO) on a tiny random model."""

from __future__ import annotations

import asyncio
import math
import warnings
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.adapters.trl import completion_text, reward_funcs, to_samples
from tests import adapters_support as sup

trl = pytest.importorskip("trl")
pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

WORDS = ["<pad>", "<eos>", "<unk>", "what", "is", "two", "plus", "four", "?", ".", "yes", "no"]


def tiny_model_dir(tmp_path: Path) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer, saved offline."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )
    path = tmp_path / "tiny"
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def dataset() -> Any:
    return datasets.Dataset.from_dict(
        {
            "prompt": ["what is two plus two ?", "what is four ?"] * 2,
            "answer": ["four", "four"] * 2,
        }
    )


def run(trainer_name: str, funcs: list[Any], weights: list[float], tmp_path: Path) -> Any:
    common: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=4,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        reward_weights=weights,
        seed=0,
    )
    model = tiny_model_dir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers and TRL warn about their own defaults
        if trainer_name == "grpo":
            args: Any = trl.GRPOConfig(**common)
            cls: Any = trl.GRPOTrainer
        else:
            args = trl.RLOOConfig(**common)
            cls = trl.RLOOTrainer
        trainer = cls(model=str(model), reward_funcs=funcs, args=args, train_dataset=dataset())
        trainer.train()
    return trainer


def history_keys(trainer: Any) -> set[str]:
    return {k for h in trainer.state.log_history for k in h}


def logged(trainer: Any, key: str) -> list[float]:
    return [h[key] for h in trainer.state.log_history if key in h]


@pytest.mark.slow
def test_grpo_trains_on_every_objective_with_abstentions(tmp_path: Path) -> None:
    with sup.pipeline() as pipe:
        funcs, weights = reward_funcs(pipe)
        assert [f.__name__ for f in funcs] == ["correct", "style", "judge"]
        assert weights == [2.0, 1.0, 1.0]  # the spec's aggregate weights, 1 where unnamed
        trainer = run("grpo", funcs, weights, tmp_path)
    keys = history_keys(trainer)
    for objective in ("correct", "style", "judge"):
        assert f"rewards/{objective}/mean" in keys
        assert f"rewardhub/unscorable/{objective}" in keys
    assert trainer.state.global_step == 2
    # the judge could not score some completions, and the steps went on with them (as None)
    assert sup.Judge.abstained[0] > 0
    assert sum(logged(trainer, "rewardhub/unscorable/judge")) > 0
    assert all(math.isfinite(x) for x in logged(trainer, "loss"))
    # one pipeline call per batch for all three functions: 2 steps x 1 generation batch
    assert len(sup.Recorder.batches) == 2


@pytest.mark.slow
def test_grpo_total_mode_with_maxmin(tmp_path: Path) -> None:
    with sup.pipeline({"method": "maxmin"}) as pipe:
        funcs, weights = reward_funcs(pipe, mode="total")
        assert [f.__name__ for f in funcs] == ["total"] and weights == [1.0]
        trainer = run("grpo", funcs, weights, tmp_path)
    assert trainer.state.global_step == 2
    assert "rewards/total/mean" in history_keys(trainer)
    assert sup.Judge.abstained[0] > 0
    # max-min of (correct, style, judge) is at most the smallest objective, so at most 1
    assert all(m <= 1.0 for m in logged(trainer, "rewards/total/mean"))


@pytest.mark.slow
def test_rloo_trains(tmp_path: Path) -> None:
    with sup.pipeline() as pipe:
        funcs, weights = reward_funcs(pipe, asynchronous=True)
        trainer = run("rloo", funcs, weights, tmp_path)
    keys = history_keys(trainer)
    assert trainer.state.global_step == 2
    for objective in ("correct", "style", "judge"):
        assert f"rewards/{objective}/mean" in keys
    assert len(sup.Recorder.batches) == 2  # the async functions shared one call per batch


# -- the call contract, without a trainer --------------------------------------------------


class Log:
    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}
        self.extra: dict[str, list[Any]] = {}

    def metric(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)

    def column(self, name: str, values: list[Any]) -> None:
        self.extra.setdefault(name, []).extend(values)


PROMPTS = ["what is 2+2?"] * 3 + ["name a colour"]
COMPLETIONS = ["It is 4.", "4?", "five", "red."]
COLUMNS = {"answer": ["4", "4", "4", "red"], "level": [1, 1, 1, 2]}


def call(func: Any, log: Log, prompts: Any = PROMPTS, completions: Any = COMPLETIONS) -> Any:
    return func(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1]] * len(prompts),
        trainer_state=None,
        log_extra=log.column,
        log_metric=log.metric,
        **COLUMNS,
    )


def test_objectives_mode_shares_one_call_and_drops_an_unscorable_sample_everywhere() -> None:
    log = Log()
    with sup.pipeline() as pipe:
        funcs, _ = reward_funcs(pipe)
        out = {f.__name__: call(f, log) for f in funcs}
    # sample 1's judge could not score: under the default on_abstain the sample is
    # unscorable, so every function gives None and TRL drops the row (a None in one function
    # alone would be nansum'd as 0 and keep the other objectives' credit)
    assert out["correct"] == [1.0, None, 0.0, 1.0]  # "answer" became the reference
    assert out["style"] == [1.0, None, 0.0, 1.0]
    assert out["judge"][1] is None and out["judge"][0] == pytest.approx(8 / 20)
    assert sup.Recorder.batches == [4]  # three functions, one pipeline call
    assert log.metrics["rewardhub/unscorable/judge"] == [0.25]
    assert log.metrics["rewardhub/unscorable/correct"] == [0.0]
    assert log.metrics["rewardhub/failed/judge"] == [0.0]
    assert log.metrics["rewardhub/not_applicable/judge"] == [0.0]
    assert log.metrics["rewardhub/unscorable"] == [0.25]
    assert log.extra["rewardhub_reasons"] == ["", "judge: judge did not answer", "", ""]


def test_a_new_batch_is_scored_again_even_with_equal_content() -> None:
    log = Log()
    with sup.pipeline(cache={"memory_items": 0}) as pipe:
        funcs, _ = reward_funcs(pipe)
        call(funcs[0], log)
        call(funcs[1], log)
        call(funcs[0], log, list(PROMPTS), list(COMPLETIONS))  # the next step's lists
    assert sup.Recorder.batches == [4, 4]


def test_total_mode_unscorable_sample_is_none_never_zero() -> None:
    spec = {"sources": [{"id": "judge", "type": "flaky-judge"}], "aggregate": {"method": "maxmin"}}
    with rh.Pipeline(spec, hub=sup.hub()) as pipe:
        (total,), _ = reward_funcs(pipe, mode="total")
        out = call(total, Log())
    assert out[1] is None  # the judge did not answer: TRL leaves it out of the baseline
    assert all(isinstance(x, float) for i, x in enumerate(out) if i != 1)


def test_async_functions_gathered_share_one_call() -> None:
    log = Log()
    with sup.pipeline() as pipe:
        funcs, _ = reward_funcs(pipe, asynchronous=True)

        async def gather() -> list[Any]:
            return await asyncio.gather(*(call(f, log) for f in funcs))

        out = asyncio.run(gather())
    assert out[0] == [1.0, None, 0.0, 1.0] and out[2][1] is None
    assert sup.Recorder.batches == [4]
    assert log.metrics["rewardhub/unscorable/judge"] == [0.25]  # logged once per batch


def test_chat_data_and_reference_rule() -> None:
    prompts = [[{"role": "user", "content": "2+2?"}]] * 2
    completions = [
        [{"role": "assistant", "content": "It is 4."}],
        [{"role": "assistant", "content": [{"type": "text", "text": "four"}]}],
    ]
    samples = to_samples(prompts, completions, {"solution": ["4", "4"], "x": [1, 2]}, ("solution",))
    assert [s.completion for s in samples] == ["It is 4.", "four"]
    assert samples[0].prompt == prompts[0] and samples[0].reference == "4"
    assert samples[1].metadata == {"x": 2}
    # the default rule: the first of reference, ground_truth, answer, solution present
    s = to_samples(
        ["p"],
        ["c"],
        {"ground_truth": ["g"], "answer": ["a"]},
        ("reference", "ground_truth", "answer"),
    )
    assert s[0].reference == "g" and s[0].metadata == {"answer": "a"}
    with pytest.raises(TypeError, match="string or a list of messages"):
        completion_text(3)


def test_bad_arguments_name_the_fix() -> None:
    with sup.pipeline() as pipe:
        with pytest.raises(rh.SpecError, match=r"unknown objective\(s\) \['nope'\]"):
            reward_funcs(pipe, weights={"nope": 1.0})
        with pytest.raises(rh.SpecError, match="mode must be"):
            reward_funcs(pipe, mode="sum")  # type: ignore[arg-type]
        with pytest.raises(rh.SpecError, match="weights apply to mode='objectives'"):
            reward_funcs(pipe, mode="total", weights={"correct": 1.0})
    with (
        sup.pipeline({"method": "maxmin"}) as pipe,
        pytest.warns(UserWarning, match="mode='total'"),
    ):
        reward_funcs(pipe)


def test_a_completion_cannot_earn_reward_by_breaking_the_judge() -> None:
    """Making the judge fail ('?') gives None, which TRL drops; it never scores above a
    completion the judge could score."""
    with sup.pipeline() as pipe:
        funcs, _ = reward_funcs(pipe)
        judge = next(f for f in funcs if f.__name__ == "judge")
        out = call(judge, Log(), ["p", "p"], ["?" * 30, "ok"])
    assert out[0] is None and out[1] == pytest.approx(0.1)


def test_docs_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import doc_example

    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")  # the built-ins only, whatever is installed

    module = doc_example("trainers.md", "trl")
    assert module.rewards["brevity"][0] is not None
    module.pipe.close()
