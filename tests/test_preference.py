"""Preference heads: training on the shipped pairs, PAL mixtures, saving, the source and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.preference import PreferenceHead, chance_bound, features, read_pairs, train

pytest.importorskip("torch")

DATA = Path(__file__).parent / "data" / "preferences.jsonl"
ALPHABET = "abcdefghijklmnopqrstuvwxyz!?.,' "


def char_bag(texts: list[str]) -> np.ndarray:
    """A cheap frozen embedder: unit-norm character counts, plus length and case."""
    rows = []
    for t in texts:
        v = [t.lower().count(c) for c in ALPHABET] + [len(t) / 20, sum(c.isupper() for c in t) / 5]
        rows.append(v)
    x = np.array(rows, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_chance_bound_is_the_binomial_quantile() -> None:
    from scipy.stats import binom

    for n in (10, 48, 200):
        b = chance_bound(n)
        assert binom.sf(round(b * n) - 1, n, 0.5) >= 0.01 > binom.sf(round(b * n), n, 0.5)


def test_head_beats_chance_on_held_out_pairs() -> None:
    pairs = read_pairs(DATA)
    head = train(pairs, char_bag, embedder="char-bag", epochs=200, holdout=0.25, seed=0)
    r = head.report
    assert r["heldout_pairs"] == 60 and r["train_pairs"] == 180
    # a user-less head can only guess on the brief/detailed pairs (a third of the data); on the
    # rest it must beat what guessing reaches with p < 0.01 on a split this size
    assert r["heldout_accuracy"] > chance_bound(r["heldout_pairs"])


def test_mixture_learns_opposite_users_and_unseen_users_get_the_population() -> None:
    pairs = read_pairs(DATA)
    users = [p for p in pairs if p.user]
    single = train(pairs, char_bag, embedder="cb", epochs=300, holdout=0.0, seed=1)
    mix = train(pairs, char_bag, embedder="cb", mixture=2, epochs=300, holdout=0.0, seed=1)

    def acc(head: PreferenceHead, who: str | None) -> float:
        sel = [p for p in users if who is None or p.user == who]
        e = {t: v for t, v in zip(*_emb(sel))}
        fc = features(np.stack([e[p.prompt] for p in sel]), np.stack([e[p.chosen] for p in sel]))
        fr = features(np.stack([e[p.prompt] for p in sel]), np.stack([e[p.rejected] for p in sel]))
        u = [p.user for p in sel]
        return float(np.mean(head.rewards(fc, u) > head.rewards(fr, u)))

    # the same texts are preferred both ways, so one head is right on at most half
    assert acc(single, None) <= 0.5 + 1e-9
    assert acc(mix, "brief") >= 0.85 and acc(mix, "detailed") >= 0.85
    assert mix.users == ["brief", "detailed"]
    np.testing.assert_allclose(mix.mixture(["stranger"])[0], mix.population)
    np.testing.assert_allclose(mix.population.sum(), 1.0)


def _emb(pairs: list) -> tuple[list[str], np.ndarray]:
    texts = sorted({t for p in pairs for t in (p.prompt, p.chosen, p.rejected)})
    return texts, char_bag(texts)


def test_save_load_roundtrip_without_pickle(tmp_path: Path) -> None:
    head = train(read_pairs(DATA), char_bag, embedder="cb", mixture=2, epochs=20, seed=2)
    head.save(tmp_path / "h")
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == ["config.json", "weights.npz"]
    back = PreferenceHead.load(tmp_path / "h")
    f = features(char_bag(["q"]), char_bag(["an answer"]))
    for u in ("brief", "detailed", None, "new"):
        assert back.rewards(f, [u]) == pytest.approx(head.rewards(f, [u]))
    assert back.report == json.loads(json.dumps(head.report))
    with np.load(tmp_path / "h" / "weights.npz", allow_pickle=False) as w:
        assert set(w.files) == {"prototypes", "user_weights", "population"}
    with pytest.raises(rh.SourceError, match="rewardhub train preference-head"):
        PreferenceHead.load(tmp_path)


def test_bad_pair_files_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": 3}\n'
    )
    with pytest.raises(rh.InputError, match=r"line 2: .*\['chosen', 'rejected'\] missing"):
        read_pairs(bad)


# -- the source and the command: need sentence-transformers (a tiny model made here) ---------


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    from tests import tiny_models as tm

    return tm.sentence_model(tmp_path_factory.mktemp("st"))


def cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from rewardhub.cli import build_app

    result = CliRunner().invoke(build_app(rh.Hub(entry_points=False)), [str(a) for a in args])
    return result.exit_code, result.output


def test_train_command_and_the_source(tiny_st: Path, tmp_path: Path) -> None:
    out = tmp_path / "head"
    code, text = cli(
        "train",
        "preference-head",
        str(DATA),
        "-o",
        str(out),
        "--embedder",
        str(tiny_st),
        "--epochs",
        "50",
        "--mixture",
        "2",
    )
    assert code == 0, text
    assert "held-out pairwise accuracy" in text and "on 48 pairs" in text
    head = PreferenceHead.load(out)
    spec = {"sources": [{"type": "preference-head", "config": {"path": str(out)}}]}
    samples = [
        rh.Sample(
            prompt="How do I bake bread?", completion="Knead the dough.", metadata={"user": "brief"}
        ),
        rh.Sample(
            prompt="How do I bake bread?",
            completion="Knead the dough.",
            metadata={"user": "nobody"},
        ),
        rh.Sample(prompt="How do I bake bread?", completion=""),
    ]
    with rh.Pipeline(spec) as pipe:
        b = pipe.vector(samples)
    assert b.objectives == ("preference",)
    assert b.values[2, 0] == head.fail_value and "failed: empty completion" in str(b.reasons[2])
    from rewardhub.models import embed, load_sentence_model

    e = embed(load_sentence_model(str(tiny_st)), ["How do I bake bread?", "Knead the dough."])
    f = features(e[:1].astype(np.float64), e[1:].astype(np.float64))
    assert b.values[0, 0] == pytest.approx(float(head.rewards(f, ["brief"])[0]), abs=1e-5)
    assert b.values[1, 0] == pytest.approx(float(head.rewards(f, [None])[0]), abs=1e-5)


def test_train_command_errors(tmp_path: Path) -> None:
    code, text = cli(
        "train", "preference-head", str(tmp_path / "no.jsonl"), "-o", str(tmp_path / "o")
    )
    assert code == 1 and "does not exist" in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    code, text = cli("train", "preference-head", str(bad), "-o", str(tmp_path / "o"))
    assert code == 1 and "line 1" in text


def test_the_ensemble_uwo_spec(tiny_st: Path, tmp_path: Path) -> None:
    """specs/ensemble-uwo.yaml: UWO over three heads, trained as its comment says."""
    from rewardhub.aggregate.uncertainty import ensemble_stats, uwo
    from rewardhub.models import embed, load_sentence_model

    (tmp_path / "specs").mkdir()
    spec = (Path(__file__).parent.parent / "specs" / "ensemble-uwo.yaml").read_text()
    (tmp_path / "specs" / "ensemble-uwo.yaml").write_text(spec)
    st = load_sentence_model(str(tiny_st))
    pairs = read_pairs(DATA)
    for seed in range(3):
        head = train(pairs, lambda t: embed(st, t), embedder=str(tiny_st), epochs=30, seed=seed)
        head.save(tmp_path / ".heads" / f"seed{seed}")
    samples = [rh.Sample(prompt="How do I cook rice?", completion=c) for c in ("Rinse it.", "No.")]
    with rh.Pipeline.from_yaml(tmp_path / "specs" / "ensemble-uwo.yaml") as pipe:
        res = pipe.score(samples)
    v = res.vector.values
    mean, var = ensemble_stats(np.stack([v[:, [1]], v[:, [2]], v[:, [3]]]))
    np.testing.assert_allclose(res.total, uwo(mean, var, 0.1)[:, 0])
    assert (var > 0).all()  # the seeds disagree a little: the penalty is live


def test_embedding_similarity_outcomes(tiny_st: Path) -> None:
    from rewardhub.models import embed, load_sentence_model

    conf = {"model": str(tiny_st)}
    samples = [
        rh.Sample(prompt="q", completion="the cat sat", reference=["the cat sat", "a dog ran"]),
        rh.Sample(prompt="q", completion="", reference="the cat sat"),
        rh.Sample(prompt="q", completion="the cat sat"),
    ]
    spec = {"sources": [{"type": "embedding-similarity", "config": conf}]}
    with rh.Pipeline(spec) as pipe:
        b = pipe.vector(samples)
    assert b.values[0, 0] == pytest.approx(1.0, abs=1e-5)  # max over the references
    assert b.values[1, 0] == -1.0 and "failed: empty completion" in str(b.reasons[1])
    assert np.isnan(b.values[2, 0]) and "no reference and no exemplars" in str(b.reasons[2])
    spec["sources"][0]["config"] = {**conf, "exemplars": ["a dog ran"], "reduce": "mean"}
    with rh.Pipeline(spec) as pipe:
        b = pipe.vector(samples)
    e = embed(load_sentence_model(str(tiny_st)), ["the cat sat", "a dog ran"])
    cos = float(e[0] @ e[1])
    assert b.values[0, 0] == pytest.approx((1 + cos + cos) / 3, abs=1e-5)
    assert b.values[2, 0] == pytest.approx(cos, abs=1e-5)


def test_embedding_sources_score_an_empty_batch(tiny_st: Path, tmp_path: Path) -> None:
    # embed() of no texts used the renamed sentence-transformers method (a FutureWarning, an
    # error under the test suite's filterwarnings) and the head stacked an empty list
    from rewardhub.models import embed, load_sentence_model

    model = load_sentence_model(str(tiny_st))
    head = train(read_pairs(DATA), lambda t: embed(model, t), embedder=str(tiny_st), epochs=2)
    hub = rh.Hub(entry_points=False)
    source = hub.sources.get("preference-head")({"path": str(head.save(tmp_path / "head"))})
    assert source.score([]) == []
    similarity = hub.sources.get("embedding-similarity")({"model": str(tiny_st)})
    assert similarity.score([]) == []
