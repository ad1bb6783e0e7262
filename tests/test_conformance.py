"""Every built-in source, aggregator and normalizer passes the conformance kit.

Parametrised over a fresh Hub's registries, so a new built-in is checked automatically; one
that needs a config fails until it gets an entry below.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import shutil
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import rewardhub as rh
from rewardhub.building import building_with
from rewardhub.testing import (
    CheckSkipped,
    check_aggregator,
    check_normalizer,
    conformance_subject,
    make_samples,
)
from tests import bridge_examples
from tests.conftest import ROOT

HUB = rh.Hub(entry_points=False)

SOURCE_CONFIGS: dict[str, dict[str, Any]] = {
    "cel": {"expressions": {"short": "size(completion) < 10", "n": "double(size(prompt))"}},
    "format": {"tags": ["think", "answer"], "mode": "partial"},
    "json-schema": {"schema": {"type": "object", "required": ["a"]}},
    "keywords": {"required": ["answer"], "forbidden": ["dog"]},
    "language": {"expected": "en"},
    "math-verify": {"workers": 1},
    "python": {"function": "tests.helpers:word_count"},
    "regex": {"patterns": [{"pattern": "answer", "objective": "a"}, {"pattern": "✓"}]},
    "rego": {
        "policies": [str(ROOT / "specs" / "policies" / "argen")],
        "package": "argen",
        "rules": [
            {"rule": "deny", "objective": "principles", "kind": "penalty"},
            {"rule": "veto", "objective": "no_veto", "kind": "veto"},
        ],
    },
    "repetition": {"n": 2},
    # the bridges, over rewards written as each framework's users write them
    "openenv-rubric": {
        "rubric": "tests.bridge_examples.openenv:weighted",
        "components": {"exact": "rubric_0", "brevity": "rubric_1"},
    },
    "openjudge": {"graders": {"exact": {"grader": "tests.bridge_examples.openjudge:exact"}}},
    "eval-protocol": {
        "function": "tests.bridge_examples.eval_protocol:exact_and_short",
        "metrics": ["exact", "short"],
    },
    "verifiers": {"task": "tests.bridge_examples.verifiers:MathTask", "metrics": ["length"]},
}
# sources that start worker processes or sandboxes, or import big frameworks: slower, in CI
SLOW = {"math-verify", "code-exec", "eval-protocol", "verifiers"}


class TinyModels:
    """Tiny random-weight models (tests/tiny_models.py) in one temp dir, each built on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def classifier(self) -> Path:
        from tests import tiny_models

        return tiny_models.bert_classifier(self.root / "rm", num_labels=3, chat=True)

    @cached_property
    def causal_lm(self) -> Path:
        from tests import tiny_models

        return tiny_models.llama_causal_lm(self.root / "lm")

    @cached_property
    def sentence(self) -> Path:
        from tests import tiny_models

        return tiny_models.sentence_model(self.root / "st")

    @cached_property
    def head(self) -> Path:
        """A preference head trained for a few steps on the shipped pairs over ``sentence``."""
        from rewardhub.models import embed, load_sentence_model
        from rewardhub.preference import read_pairs, train

        model = load_sentence_model(str(self.sentence))
        pairs = read_pairs(ROOT / "tests" / "data" / "preferences.jsonl")
        head = train(
            pairs,
            lambda texts: embed(model, texts),
            embedder=str(self.sentence),
            mixture=2,
            epochs=20,
            holdout=0.0,
        )
        return head.save(self.root / "head")


def _judge_reply(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """A fake judge: a rating that depends on the request only (not on batch or order); an
    empty answer gets prose, which the source must score as a failed check."""
    from tests.openai_support import chat

    prompt = body["messages"][-1]["content"]
    if "<answer>\n\n</answer>" in prompt:
        return chat("I cannot rate an empty answer.")
    rating = 1 + hashlib.sha256(prompt.encode()).digest()[0] % 5
    return chat(f"{rating}", [{"token": str(rating), "logprob": -0.1}])


def _model_config(
    name: str, models: TinyModels, stack: contextlib.ExitStack
) -> dict[str, Any] | None:
    """Configs of the model sources, over tiny models made here and a loopback fake judge."""
    if name == "hf-classifier":
        return {
            "model": str(models.classifier),
            "heads": {0: "helpful", 2: "harmless"},
            "transform": {"harmless": "sigmoid"},
            "batch_size": 3,
        }
    if name == "embedding-similarity":
        return {"model": str(models.sentence), "exemplars": ["the answer is 4", "hello"]}
    if name == "preference-head":
        return {"path": str(models.head)}
    if name == "llm-judge":
        return {"model": str(models.causal_lm), "rubric": "be right", "min_mass": 0.0}
    if name == "openai-judge":
        from tests.openai_support import FakeServer

        server = stack.enter_context(FakeServer(_judge_reply))
        return {"base_url": server.url, "model": "fake", "rubric": "be right", "backoff_s": 0}
    if name == "ensemble":  # two cheap members, one of which abstains on empty answers
        return {
            "members": [
                {"type": "length", "config": {"target": 10}},
                {
                    "type": "python",
                    "config": {
                        "function": "tests.helpers:word_count_or_abstain",
                        "objectives": ["brevity"],
                    },
                },
            ],
            "keep_members": True,
        }
    return None


MODEL_SOURCES = {
    "hf-classifier",
    "embedding-similarity",
    "preference-head",
    "llm-judge",
    "openai-judge",
}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyModels]:
    """Built once per module (per xdist worker); tiny models run fastest on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TinyModels(tmp_path_factory.mktemp("tiny-models"))
    torch.set_num_threads(threads)


NEEDS: dict[str, tuple[Callable[[], bool], str]] = {
    "code-exec": (lambda: shutil.which("bwrap") is not None, "bubblewrap (make sandbox)"),
    "math-verify": (
        lambda: importlib.util.find_spec("math_verify") is not None,
        "math-verify (pip install 'rewardhub[verify]')",
    ),
    "rego": (lambda: importlib.util.find_spec("regorus") is not None, "rewardhub[policy]"),
    "cel": (lambda: importlib.util.find_spec("cel") is not None, "rewardhub[policy]"),
    **{
        name: (lambda: importlib.util.find_spec("transformers") is not None, "rewardhub[models]")
        for name in MODEL_SOURCES - {"openai-judge"}
    },
    "openai-judge": (lambda: importlib.util.find_spec("httpx") is not None, "rewardhub[models]"),
    **{
        name: (functools.partial(bridge_examples.installed, name), f"rewardhub[{extra}]")
        for name, extra in [
            ("openenv-rubric", "openenv"),
            ("openjudge", "openjudge"),
            ("eval-protocol", "eval-protocol"),
            ("verifiers", "verifiers"),
        ]
    },
}
CODE = "```python\nprint(sum([2, 2]))\n```"


def _samples(name: str) -> list[rh.Sample] | None:
    if name == "code-exec":
        tests = "assert True"
        return [
            rh.Sample(prompt="add", completion=CODE, reference=tests),
            rh.Sample(prompt="add", completion="print(", reference=tests),
            rh.Sample(prompt=[{"role": "user", "content": "loop"}], completion="", reference=tests),
        ]
    if name == "math-verify":
        return [
            rh.Sample(prompt="2+2?", completion="The answer is \\boxed{4}.", reference="4"),
            rh.Sample(prompt="2+2?", completion="I think 5", reference="4"),
            rh.Sample(prompt="1/2?", completion="\\boxed{\\frac{1}{2}}", reference="0.5"),
        ]
    return None


def _source_params() -> list[Any]:
    out = []
    for name in HUB.sources.names():
        marks = [pytest.mark.slow] if name in SLOW else []
        need = NEEDS.get(name)
        if need is not None and not need[0]():
            marks.append(pytest.mark.skip(reason=f"{name} needs {need[1]}"))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


@pytest.mark.parametrize("name", _source_params())
def test_builtin_source_passes_the_kit(name: str, request: pytest.FixtureRequest) -> None:
    with contextlib.ExitStack() as stack:
        config = SOURCE_CONFIGS.get(name)
        if name in MODEL_SOURCES or name == "ensemble":
            models = request.getfixturevalue("tiny_models") if name in MODEL_SOURCES else None
            config = _model_config(name, models, stack)  # type: ignore[arg-type]
        if name == "remote":  # against a live loopback server scoring a rule
            from tests.server_support import live

            remote = rh.Pipeline.from_spec(
                {"sources": [{"type": "length", "config": {"target": 10}}]}, hub=HUB
            )
            url = stack.enter_context(live(stack.enter_context(remote)))
            config = {"url": url, "objectives": ["brevity"]}
        _check_source(name, config)


def _check_source(name: str, config: dict[str, Any] | None) -> None:
    with building_with(HUB):  # an ensemble's members come from the hub under test
        _check_subject(name, config)


def _check_subject(name: str, config: dict[str, Any] | None) -> None:
    subject = conformance_subject(HUB.sources.get(name), config, _samples(name))
    try:
        for check, run in subject.checks().items():
            try:
                run()
            except CheckSkipped:
                continue
            except AssertionError as exc:
                raise AssertionError(f"[{check}] {exc}") from None
    finally:
        subject.close()


AGGREGATOR_CONFIGS: dict[str, dict[str, Any]] = {
    "gate": {"gates": [{"objective": "a", "min": 0.0, "action": "veto"}]},
    "lagrangian": {"constraints": [{"objective": "a", "threshold": 0.0}]},
    "wco": {"members": {"m": ["a", "b"]}},
    "lexicographic": {"order": ["a", "b"]},
}


@pytest.mark.parametrize("name", HUB.aggregators.names())
def test_builtin_aggregator_passes_the_kit(name: str) -> None:
    check_aggregator(name, AGGREGATOR_CONFIGS.get(name), hub=HUB)


@pytest.mark.parametrize("name", HUB.normalizers.names())
def test_builtin_normalizer_passes_the_kit(name: str) -> None:
    check_normalizer(name, hub=HUB)
    try:
        HUB.normalizers.get(name).Config.model_validate({"per": "group"})
    except ValidationError:
        return  # batch-level only (running statistics)
    check_normalizer(name, {"per": "group"}, hub=HUB)


def test_make_samples_gives_groups_chat_prompts_and_references() -> None:
    samples = make_samples(6, group_size=3)
    assert [s.metadata["group"] for s in samples] == [0, 0, 0, 1, 1, 1]
    assert isinstance(samples[3].prompt, list) and samples[0].reference == "0"
    assert make_samples(6) == make_samples(6) and make_samples(6, seed=1) != make_samples(6)
