"""Rewards written the way each framework's users write them, for the bridge tests: one
module per framework (importing it imports the framework), referenced by the test configs as
``tests.bridge_examples.<framework>:<name>``."""

from __future__ import annotations

import importlib.util

import rewardhub as rh

#: the framework each bridge needs (an importable module), for skipping when it is missing
MODULES = {
    "openenv-rubric": "openenv",
    "verifiers": "verifiers",
    "eval-protocol": "eval_protocol",
    "openjudge": "openjudge",
}


def installed(source_type: str) -> bool:
    return importlib.util.find_spec(MODULES[source_type]) is not None


#: samples with a reference answer: right, wrong, long, formatted, empty
SAMPLES = [
    rh.Sample(prompt="2+2?", completion="\\boxed{4}", reference="4"),
    rh.Sample(prompt="2+2?", completion="The answer is \\boxed{5}", reference="4"),
    rh.Sample(prompt="Capital of France?", completion="Paris", reference="paris"),
    rh.Sample(
        prompt=[{"role": "user", "content": "Think, then answer: 3*3?"}],
        completion="<think>\n3*3 is 9\n</think>\n<answer>\n9\n</answer>",
        reference="9",
    ),
    rh.Sample(prompt="Say something long", completion="word " * 60, reference="x"),
    rh.Sample(prompt="empty?", completion="", reference="4"),
]
