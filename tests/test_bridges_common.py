"""What every bridge shares: the missing-extra error, chat messages, the per-sample result."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.bridges._common import Scored, chat, from_chat, number, scored

BRIDGES = [
    ("openenv-rubric", "openenv.core.rubrics", "openenv", {"rubric": "m:r"}),
    (
        "openjudge",
        "openjudge.graders.base_grader",
        "openjudge",
        {"graders": {"a": {"grader": "m:g"}}},
    ),
    ("eval-protocol", "eval_protocol.models", "eval-protocol", {"function": "m:f"}),
    ("verifiers", "verifiers.v1", "verifiers", {"task": "m:T", "rewards": ["r"]}),
]


@pytest.mark.parametrize(("source_type", "module", "extra", "config"), BRIDGES)
def test_a_missing_framework_names_its_extra(
    source_type: str,
    module: str,
    extra: str,
    config: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [module, module.split(".")[0]]:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError
    source = rh.Hub().sources.get(source_type)(config)
    with pytest.raises(rh.MissingExtraError, match=rf"pip install 'rewardhub\[{extra}\]'"):
        source.score([rh.Sample(prompt="p", completion="c")])


def test_the_hub_loads_the_bridges_without_their_frameworks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _, module, _, _ in BRIDGES:
        monkeypatch.setitem(sys.modules, module.split(".")[0], None)
    names = rh.Hub().sources.names()
    assert {"openenv-rubric", "openjudge", "eval-protocol", "verifiers"} <= set(names)


def test_chat_round_trips_text_and_message_prompts() -> None:
    text = rh.Sample(prompt="hi", completion="yo", reference="r")
    assert chat(text) == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    back = from_chat(chat(text), "r")
    assert (back.prompt_text, back.completion, back.reference) == ("hi", "yo", "r")
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert from_chat([*msgs, {"role": "assistant", "content": "yo"}]).prompt == msgs


def test_number_never_coerces_text_and_drops_non_finite() -> None:
    assert number(0.5) == 0.5 and number(1) == 1.0 and number(True) == 1.0
    assert number("0.5") is None and number(None) is None
    assert number(math.nan) is None and number(math.inf) is None


def test_scored_keeps_each_outcome_and_why_a_total_is_missing() -> None:
    @rh.reward_source("mixed", objectives=["a"])
    def mixed(sample: rh.Sample) -> Any:
        return {"ok": 1.0, "bad": rh.Fail("wrong format"), "down": rh.Abstain("judge down")}[
            sample.completion
        ]

    pipe = rh.Pipeline.from_spec(
        {"sources": [{"id": "m", "type": "mixed"}]},
        hub=rh.Hub(plugins=[rh.testing.plugin_with(mixed)]),
    )
    ok, bad, down = scored(
        pipe.score([rh.Sample(prompt="p", completion=c) for c in ("ok", "bad", "down")])
    )
    assert ok == Scored(total=1.0, values={"a": 1.0}, outcomes={"a": "value"})
    assert (
        bad.total == 0.0 and bad.outcomes == {"a": "failed"} and "wrong format" in bad.reasons["a"]
    )
    assert (
        down.total is None
        and down.values == {"a": None}
        and "judge down" in (down.unscorable or "")
    )
