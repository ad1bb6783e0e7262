"""No free text past a model's window (issue 20): embedding-similarity and hf-classifier score
long completions in windows, fail them, or cut them only when asked (and count the cut)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.sources._windows import reduce, spans
from tests import tiny_models as tm

pytest.importorskip("sentence_transformers")

REF = "the cat sat on the mat"
#: on topic and past the tiny models' 64-token window (a character tokenizer)
OPENING = " ".join([REF] * 4)
TAIL = " zzz qqq 999 ### !!! xxx" * 6


_one_thread = pytest.fixture(autouse=True, scope="module")(tm.one_thread)


@pytest.fixture(scope="module")
def st_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tm.sentence_model(tmp_path_factory.mktemp("st"))


@pytest.fixture(scope="module")
def rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tm.bert_classifier(tmp_path_factory.mktemp("rm") / "m", num_labels=2)


def _pipe(type_: str, **config: Any) -> rh.Pipeline:
    return rh.Pipeline({"sources": [{"id": "m", "type": type_, "config": config}]})


def test_spans_cover_the_text_in_whole_tokens() -> None:
    tok = tm.tokenizer()
    text = "abc def " * 20
    cuts = spans(tok, text, 10)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
    assert all(len(tok(text[a:b], add_special_tokens=False)["input_ids"]) <= 10 for a, b in cuts)
    assert spans(tok, "short", 10) == [(0, 5)]
    assert reduce([0.2, 0.8], "min") == 0.2 and reduce([0.2, 0.8], "mean") == 0.5


def test_similarity_reads_the_tail_past_the_window(st_model: Path) -> None:
    samples = [
        rh.Sample(prompt="q", completion=OPENING, reference=REF),
        rh.Sample(prompt="q", completion=OPENING + TAIL, reference=REF),
    ]
    with _pipe("embedding-similarity", model=str(st_model)) as pipe:
        v = pipe.vector(samples).values[:, 0]
    assert v[1] < v[0] - 0.01  # the off-topic tail costs (it was free when cut)
    with _pipe("embedding-similarity", model=str(st_model), window_reduce="mean") as pipe:
        mean = pipe.vector(samples).values[1, 0]
    assert v[1] <= mean <= v[0] + 1e-6


def test_similarity_overflow_fail_and_counted_truncation(st_model: Path) -> None:
    long = rh.Sample(prompt="q", completion=OPENING + TAIL, reference=REF)
    short = rh.Sample(prompt="q", completion=REF, reference=REF)
    with _pipe("embedding-similarity", model=str(st_model), overflow="fail") as pipe:
        b = pipe.vector([long, short])
    assert b.values[0, 0] == -1.0 and "overflow: fail" in str(b.reasons[0])
    assert b.values[1, 0] > 0.99
    with _pipe("embedding-similarity", model=str(st_model), overflow="truncate") as pipe:
        res = pipe.score([long, short, rh.Sample(prompt="q", completion=OPENING, reference=REF)])
    cut = res.diagnostics["truncated"]["m"]
    assert cut[0] > 0 and cut[1] == 0
    # silent no more: the cut tail is counted, and it is free only because it was asked for
    assert res.vector.values[0, 0] == pytest.approx(res.vector.values[2, 0], abs=1e-6) or cut[2] > 0
    with _pipe("embedding-similarity", model=str(st_model)) as pipe:
        assert "truncated" not in pipe.score([long, short]).diagnostics


def test_classifier_reads_the_tail_past_the_window(rm: Path) -> None:
    samples = [
        rh.Sample(prompt="q", completion=OPENING),
        rh.Sample(prompt="q", completion=OPENING + TAIL),
    ]
    with _pipe("hf-classifier", model=str(rm), heads={0: "a", 1: "b"}) as pipe:
        windowed = pipe.vector(samples).values
    with _pipe("hf-classifier", model=str(rm), heads={0: "a", 1: "b"}, overflow="truncate") as pipe:
        res = pipe.score(samples)
    cut = res.vector.values
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-6)  # cut: the tail is never read
    assert res.diagnostics["truncated"]["m"][1] > 0
    src = rh.Hub().sources.get("hf-classifier")({"model": str(rm), "heads": {0: "a", 1: "b"}})
    ids = src._ids([src.text(samples[1])])[0]  # type: ignore[attr-defined]
    windows = src._windows(samples[1], ids)  # type: ignore[attr-defined]
    assert isinstance(windows, list) and len(windows) >= 2
    assert all(len(w) <= src._max_length() for w in windows)  # type: ignore[attr-defined]
    # every window is read: the score is the min per head of the model on each window
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(rm).eval()
    with torch.inference_mode():
        each = np.array([model(input_ids=torch.tensor([w])).logits[0].tolist() for w in windows])
    np.testing.assert_allclose(windowed[1], each.min(axis=0), atol=1e-5)
    assert not np.allclose(each[0], each[-1], atol=1e-6)
    # min per head over the windows, by default
    with _pipe(
        "hf-classifier", model=str(rm), heads={0: "a", 1: "b"}, window_reduce="mean"
    ) as pipe:
        mean = pipe.vector(samples[1:]).values[0]
    assert (windowed[1] <= mean + 1e-6).all()


def test_classifier_prompt_alone_past_the_window_abstains(rm: Path) -> None:
    s = rh.Sample(prompt="p " * 80, completion="a " * 10)
    with _pipe("hf-classifier", model=str(rm)) as pipe:
        b = pipe.vector([s])
    assert np.isnan(b.values[0, 0]) and "prompt alone" in str(b.reasons[0])
