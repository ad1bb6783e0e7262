"""OpenJudge grader arguments as a rewardhub Sample (no OpenJudge import needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewardhub.types import Sample


def to_sample(
    query: Any = "", response: Any = "", reference_response: Any = None, **kwargs: Any
) -> Sample:
    """OpenJudge grader arguments as a Sample: ``query`` is the prompt, ``response`` the
    completion, ``reference_response`` (or ``reference``) the reference; the rest metadata."""
    reference = kwargs.pop("reference", None)
    if reference_response not in (None, ""):
        reference = reference_response
    kwargs.pop("messages", None)
    metadata = kwargs.pop("metadata", None)
    extra = {k: v for k, v in kwargs.items() if isinstance(k, str)}
    if isinstance(metadata, Mapping):
        extra = {**extra, **metadata}
    prompt = query if isinstance(query, (str, list)) else str(query)
    return Sample(prompt=prompt, completion=str(response), reference=reference, metadata=extra)
