"""OpenEnv rewards written as its users write them (see the package docstring)."""

from __future__ import annotations

from typing import Any

from openenv.core.rubrics import Gate, Rubric, Sequential, WeightedSum


class MatchesReference(Rubric):  # type: ignore[misc]
    """1 when the action equals the reference carried in the observation metadata."""

    def forward(self, action: Any, observation: Any) -> float:
        reference = str(observation.metadata.get("reference", "")).strip().lower()
        return 1.0 if str(action).strip().lower() == reference else 0.0


class Brevity(Rubric):  # type: ignore[misc]
    def forward(self, action: Any, observation: Any) -> float:
        return max(0.0, 1.0 - len(str(action)) / 200)


class NonEmpty(Rubric):  # type: ignore[misc]
    def forward(self, action: Any, observation: Any) -> float:
        return 1.0 if str(action).strip() else 0.0


class AsyncBrevity(Rubric):  # type: ignore[misc]
    async def forward(self, action: Any, observation: Any) -> float:
        return max(0.0, 1.0 - len(str(action)) / 200)


class Broken(Rubric):  # type: ignore[misc]
    def forward(self, action: Any, observation: Any) -> float:
        if "boom" in str(action):
            raise RuntimeError("judge endpoint unreachable")
        return 1.0 if "none" not in str(action) else None  # type: ignore[return-value]


def weighted() -> Any:
    return WeightedSum([MatchesReference(), Brevity()], weights=[0.7, 0.3])


def gated() -> Any:
    """Sequential fails fast: an empty action never reaches the weighted part."""
    return Sequential(Gate(NonEmpty()), weighted())


def mixed_async() -> Any:
    return WeightedSum([MatchesReference(), AsyncBrevity()], weights=[0.5, 0.5])
