"""Evaluating a reward before training on it: accuracy on preference pairs (per source,
objective and total, with intervals, coverage, relations and calibration), RewardBench's
section averages, and over-optimisation curves of best-of-n.

See docs/evaluation.md for what each number means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardhub._lazy import lazy_getattr

if TYPE_CHECKING:
    from rewardhub.evaluate.metrics import (
        Accuracy,
        Calibration,
        accuracy,
        agreement_matrix,
        calibration,
        pair_outcomes,
        spearman_matrix,
        win_probability,
    )
    from rewardhub.evaluate.overopt import (
        Curve,
        bon_gold_curve,
        ensemble_proxies,
        overoptimization,
        selected_gold,
    )
    from rewardhub.evaluate.pairs import (
        PreferencePair,
        read_pairs,
    )
    from rewardhub.evaluate.rewardbench import (
        section_scores,
    )
    from rewardhub.evaluate.run import (
        EvalResult,
        Scored,
        evaluate,
        score_pairs,
        summarize,
    )

# each part loads on first use: the report reads one matrix function without the pipeline
# machinery, and the command line imports this package only when a command runs
__getattr__ = lazy_getattr(
    globals(),
    {
        "Accuracy": "rewardhub.evaluate.metrics",
        "Calibration": "rewardhub.evaluate.metrics",
        "accuracy": "rewardhub.evaluate.metrics",
        "agreement_matrix": "rewardhub.evaluate.metrics",
        "calibration": "rewardhub.evaluate.metrics",
        "pair_outcomes": "rewardhub.evaluate.metrics",
        "spearman_matrix": "rewardhub.evaluate.metrics",
        "win_probability": "rewardhub.evaluate.metrics",
        "Curve": "rewardhub.evaluate.overopt",
        "bon_gold_curve": "rewardhub.evaluate.overopt",
        "ensemble_proxies": "rewardhub.evaluate.overopt",
        "overoptimization": "rewardhub.evaluate.overopt",
        "selected_gold": "rewardhub.evaluate.overopt",
        "PreferencePair": "rewardhub.evaluate.pairs",
        "read_pairs": "rewardhub.evaluate.pairs",
        "section_scores": "rewardhub.evaluate.rewardbench",
        "EvalResult": "rewardhub.evaluate.run",
        "Scored": "rewardhub.evaluate.run",
        "evaluate": "rewardhub.evaluate.run",
        "score_pairs": "rewardhub.evaluate.run",
        "summarize": "rewardhub.evaluate.run",
    },
)

__all__ = [
    "Accuracy",
    "Calibration",
    "Curve",
    "EvalResult",
    "PreferencePair",
    "Scored",
    "accuracy",
    "agreement_matrix",
    "bon_gold_curve",
    "calibration",
    "ensemble_proxies",
    "evaluate",
    "overoptimization",
    "pair_outcomes",
    "read_pairs",
    "score_pairs",
    "section_scores",
    "selected_gold",
    "spearman_matrix",
    "summarize",
    "win_probability",
]
