from __future__ import annotations

import numpy as np
import rewardhub_readability
from rewardhub_readability import Readability, Squash

import rewardhub as rh
from rewardhub.testing import check_normalizer, rewardhub_conformance

PLAIN = "The cat sat on the mat. It was warm there, so the cat stayed for a long nap."
DENSE = (
    "Notwithstanding considerable epistemological disagreement, contemporary "
    "philosophical investigations characteristically emphasize methodological pluralism."
)

test_readability_conformance = rewardhub_conformance(Readability, {"target_grade": 6})
test_squash_conformance = rewardhub_conformance(Squash, {"center": 0.5, "scale": 2.0})


def _pipe(**config: object) -> rh.Pipeline:
    spec = {
        "sources": [{"type": "readability", "config": config}],
        "normalize": {"method": "squash", "scale": 0.5},
    }
    return rh.Pipeline(spec, hub=rh.Hub(plugins=[rewardhub_readability]))


def test_closer_to_target_grade_scores_higher() -> None:
    with _pipe(target_grade=4) as pipe:
        res = pipe.score([rh.Sample(prompt="q", completion=t) for t in (PLAIN, DENSE)])
    plain, dense = res.vector.column("readability")
    assert plain > dense and -1.0 < res.total[1] < res.total[0] <= 0


def test_one_word_and_repetitive_answers_fail_at_the_worst_score() -> None:
    with _pipe() as pipe:
        res = pipe.score(
            [rh.Sample(prompt="q", completion=t) for t in ("Yes.", "a a a a a a a a a a a a.")]
        )
    assert res.vector.column("readability").tolist() == [-1.0, -1.0]
    assert all(e["readability"].startswith("failed: ") for e in res.vector.reasons)


def test_squash_is_bounded_monotone_and_keeps_nan() -> None:
    check_normalizer(Squash, {"per": "group"})
    out = Squash({"scale": 2.0}).transform(np.array([[-3.0], [0.0], [1.0], [np.nan]]))
    assert -1 < out[0, 0] < out[1, 0] < out[2, 0] < 1 and np.isnan(out[3, 0])
