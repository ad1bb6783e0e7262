"""Preference-conditioned weights: one frozen model serves users with different trade-offs.

Rewards-in-Context (Yang et al., 2024) and Directional Preference Alignment (Wang et al., 2024)
condition generation on a user's weights or direction over the objectives; a *weight policy*
supplies them per request, either given (``fixed``, ``direction``) or predicted from the prompt
(``nearest-centroid``: the prompt's nearest exemplar profile decides, as a small Preference
Orchestrator-style router). Policies are built from config by :func:`weight_policy`, so specs
and the CLI can name them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rewardhub.errors import InputError
from rewardhub.types import FloatArray

Embed = Callable[[Sequence[str]], Any]


class WeightPolicy(Protocol):
    """Maps prompts to one ``{objective: weight}`` per prompt."""

    def __call__(self, prompts: Sequence[str]) -> list[dict[str, float]]: ...


def _check_weights(w: Mapping[str, float], what: str) -> dict[str, float]:
    out = {str(k): float(v) for k, v in w.items()}
    if (
        not out
        or any(not math.isfinite(v) or v < 0 for v in out.values())
        or sum(out.values()) <= 0
    ):
        raise ValueError(f"{what} must be finite, non-negative and not all zero, got {dict(w)}")
    return out


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], what: str, **data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{what}: {where}: {first['msg']}") from None


class FixedWeights:
    """The same weights for every prompt."""

    class Config(_Config):
        weights: dict[str, float]

        @field_validator("weights")
        @classmethod
        def _ok(cls, v: dict[str, float]) -> dict[str, float]:
            return _check_weights(v, "weights")

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = _validated(self.Config, "weights", weights=dict(weights)).weights

    def __call__(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self.weights) for _ in prompts]


class DirectionWeights(FixedWeights):
    """DPA: a direction in objective space, used as the unit vector v / ‖v‖."""

    def __init__(self, direction: Mapping[str, float]) -> None:
        w = _validated(self.Config, "direction", weights=dict(direction)).weights
        norm = math.sqrt(sum(x * x for x in w.values()))
        super().__init__({k: x / norm for k, x in w.items()})


def hashed_ngrams(texts: Sequence[str], dim: int = 512, n: int = 3) -> FloatArray:
    """A model-free embedding: L2-normalised counts of hashed character n-grams."""
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        t = f" {text.lower()} "
        for j in range(max(1, len(t) - n + 1)):
            h = hashlib.blake2b(t[j : j + n].encode("utf-8", "surrogatepass"), digest_size=4)
            out[i, int.from_bytes(h.digest(), "little") % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


class Profile(_Config):
    examples: list[str] = Field(min_length=1, description="prompts typical of this profile")
    weights: dict[str, float] = Field(description="the weights this profile's users want")

    @field_validator("weights")
    @classmethod
    def _ok(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_weights(v, "weights")


class NearestCentroid:
    """Predict weights from the prompt: the profile whose exemplar centroid is nearest (cosine)
    decides. ``embed`` maps texts to vectors (default: :func:`hashed_ngrams`, no model; pass a
    sentence-transformers ``encode`` for semantic routing)."""

    class Config(_Config):
        profiles: dict[str, Profile] = Field(min_length=1)

    def __init__(self, profiles: Mapping[str, Any], embed: Embed | None = None) -> None:
        self.profiles = _validated(self.Config, "profiles", profiles=dict(profiles)).profiles
        self.embed = embed or hashed_ngrams
        cents = []
        for p in self.profiles.values():
            c = np.asarray(self.embed(p.examples), dtype=np.float64).mean(axis=0)
            cents.append(c / (np.linalg.norm(c) or 1.0))
        self.centroids = np.stack(cents)
        self.names = list(self.profiles)

    def route(self, prompts: Sequence[str]) -> list[str]:
        """The profile chosen for each prompt."""
        e = np.asarray(self.embed(list(prompts)), dtype=np.float64)
        e = e / np.where((n := np.linalg.norm(e, axis=1, keepdims=True)) == 0, 1.0, n)
        return [self.names[int(j)] for j in np.argmax(e @ self.centroids.T, axis=1)]

    def __call__(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self.profiles[name].weights) for name in self.route(prompts)]


WEIGHT_POLICIES: dict[str, Any] = {
    "fixed": FixedWeights,
    "direction": DirectionWeights,
    "nearest-centroid": NearestCentroid,
}


def weight_policy(config: Mapping[str, Any], embed: Embed | None = None) -> WeightPolicy:
    """Build a weight policy from ``{"type": NAME, ...}`` (types: :data:`WEIGHT_POLICIES`)."""
    kind = config.get("type")
    if kind not in WEIGHT_POLICIES:
        raise InputError(
            f"weight policy type {kind!r} is unknown; choose one of {sorted(WEIGHT_POLICIES)}"
        )
    params = {k: v for k, v in config.items() if k != "type"}
    key = {"nearest-centroid": "profiles", "direction": "direction"}.get(kind, "weights")
    extra = sorted(set(params) - {key})
    if extra:
        raise InputError(f"weight policy {kind!r} takes only {key!r}, got {extra}")
    if kind == "nearest-centroid":
        return NearestCentroid(params.get(key, {}), embed=embed)
    policy: WeightPolicy = WEIGHT_POLICIES[kind](params.get(key, {}))
    return policy
