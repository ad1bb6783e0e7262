"""OpenEnv (action, observation) pairs as rewardhub Samples (no OpenEnv import needed)."""

from __future__ import annotations

from typing import Any

from rewardhub.types import Sample

#: observation metadata keys that carry the sample's prompt and reference
PROMPT_KEY, REFERENCE_KEY = "prompt", "reference"


def to_sample(action: Any, observation: Any, action_field: str = "message") -> Sample:
    """An OpenEnv (action, observation) as a Sample: the action (or its ``action_field``) is
    the completion; the observation's metadata gives the prompt, reference and metadata."""
    completion = action if isinstance(action, str) else getattr(action, action_field, None)
    if not isinstance(completion, str):
        raise ValueError(
            f"the action {type(action).__name__} has no text field {action_field!r}; pass "
            "action_field= naming the field that holds the completion"
        )
    metadata = dict(getattr(observation, "metadata", None) or {})
    prompt = metadata.pop(PROMPT_KEY, "")
    reference = metadata.pop(REFERENCE_KEY, None)
    return Sample(prompt=prompt, completion=completion, reference=reference, metadata=metadata)
