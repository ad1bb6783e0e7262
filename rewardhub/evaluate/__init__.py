"""Evaluating a reward before training on it: accuracy on preference pairs (per source,
objective and total, with intervals, coverage, relations and calibration), RewardBench's
section averages, and over-optimisation curves of best-of-n.

See docs/evaluation.md for what each number means.
"""

from __future__ import annotations

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
from rewardhub.evaluate.pairs import PreferencePair, read_pairs
from rewardhub.evaluate.rewardbench import section_scores
from rewardhub.evaluate.run import EvalResult, Scored, evaluate, score_pairs, summarize

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
