"""A user reward function for the ``python`` source (used by specs/demo.yaml)."""

from __future__ import annotations

import rewardhub as rh

POLITE = ("please", "thank", "glad", "happy to", "sorry")


def politeness(sample: rh.Sample) -> float | None:
    """Fraction of politeness markers present; abstains on an empty completion."""
    text = sample.completion.lower()
    if not text.strip():
        return None
    return sum(marker in text for marker in POLITE) / len(POLITE)
