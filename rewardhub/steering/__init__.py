"""Inference-time steering with reward pipelines: best-of-n (hard and soft) with its KL cost,
blockwise controlled decoding (weighted, max-min and RMOD's robust rule), and weight policies
that condition the trade-off per request.

Model-free parts (best-of-n over any generator, the KL maths, weight policies) need only the
core; decoding with a transformers model needs the ``models`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardhub._lazy import lazy_getattr
from rewardhub.steering.bon import (
    best_of_n,
    bon_curve,
    bon_kl_bound,
    bon_kl_estimate,
    soft_best_of_n,
)
from rewardhub.steering.result import Candidate, SteerResult
from rewardhub.steering.weights import (
    DirectionWeights,
    FixedWeights,
    NearestCentroid,
    WeightPolicy,
    weight_policy,
)

if TYPE_CHECKING:
    from rewardhub.steering.lm import LMGenerator, controlled_decode, format_prompt

__getattr__ = lazy_getattr(
    globals(),
    {
        "LMGenerator": "rewardhub.steering.lm",
        "controlled_decode": "rewardhub.steering.lm",
        "format_prompt": "rewardhub.steering.lm",
    },
)

__all__ = [
    "Candidate",
    "DirectionWeights",
    "FixedWeights",
    "LMGenerator",
    "NearestCentroid",
    "SteerResult",
    "WeightPolicy",
    "best_of_n",
    "bon_curve",
    "bon_kl_bound",
    "bon_kl_estimate",
    "controlled_decode",
    "format_prompt",
    "soft_best_of_n",
    "weight_policy",
]
