from __future__ import annotations

import rewardhub_sentiment
from rewardhub_sentiment import Sentiment

import rewardhub as rh
from rewardhub.testing import check_source, rewardhub_conformance

test_conformance = rewardhub_conformance(Sentiment)


def _score(*texts: str, **config: object) -> list[float]:
    hub = rh.Hub(plugins=[rewardhub_sentiment])
    with rh.Pipeline({"sources": [{"type": "sentiment", "config": config}]}, hub=hub) as pipe:
        res = pipe.score([rh.Sample(prompt="review?", completion=t) for t in texts])
    return res.vector.column("sentiment").tolist()


def test_positive_beats_negative() -> None:
    good, bad = _score("I really enjoyed this, it was lovely.", "This was awful and I hated it.")
    assert good > 0.5 and bad < -0.5


def test_repetition_and_shouting_earn_nothing_extra() -> None:
    plain, gamed = _score("the film was great", "THE FILM WAS GREAT GREAT GREAT great!!!!!!")
    assert gamed == plain
    raw_plain, raw_gamed = _score(
        "the film was great", "THE FILM WAS GREAT GREAT GREAT great!!!!!!", flatten=False
    )
    assert raw_gamed > raw_plain  # what the defaults protect against


def test_one_word_answers_fail_the_check_at_the_worst_score() -> None:
    assert _score("Great!", "great great great great") == [-1.0, -1.0]
    assert _score("Great!", min_words=0)[0] > 0


def test_unflattened_config_passes_the_kit_too() -> None:
    check_source(Sentiment, {"flatten": False, "min_words": 0})
