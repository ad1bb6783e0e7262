"""The over-optimisation experiment: best-of-n by a learned proxy against a gold reward, and
the mitigation by conservative ensembles (mean, WCO, UWO), on the offline models.

    python benchmarks/overoptimization.py            # the committed table and plot
    python benchmarks/overoptimization.py --quick    # small budgets: what CI runs

Setup (the synthetic one of Gao et al., 2023, with the ensembles of Coste et al., 2023):

- candidates: SmolLM2-135M-Instruct samples (temperature 1) for explain-a-topic prompts;
- gold: the steering experiment's rule objectives (benchmarks/steering_rewards.py), the mean
  of brevity and coverage, in [0, 1];
- proxies: Bradley–Terry preference heads on MiniLM embeddings (rewardhub.preference), each
  trained with its own seed on its own bootstrap sample of gold-labelled pairs, the labels
  drawn from the gold's Bradley–Terry model (noisy, as human labels are), from held-apart
  prompts;
- curves: E[gold of the proxy's best of n] against the KL of best-of-n, exact from the
  candidates (rewardhub.evaluate.overopt), for one head alone and for the ensemble's mean,
  WCO (the worst member) and UWO (mean − 0.5·variance).

Writes overoptimization.md (table), overoptimization.png (plot) and overoptimization.json
(the curves, for ``rewardhub report --curves``) into benchmarks/results/ (or --out DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from steering import TOPICS  # noqa: E402
from steering_rewards import rewards as gold_rewards  # noqa: E402

import rewardhub as rh  # noqa: E402
from rewardhub.evaluate import ensemble_proxies, overoptimization  # noqa: E402
from rewardhub.preference import Pair, features, train  # noqa: E402


def gold(prompt: str, text: str) -> float:
    """The mean of brevity and coverage: dense enough to rank short samples."""
    return float(np.mean(gold_rewards(rh.Sample(prompt, text))))


def generate(prompts: list[str], n: int, max_new: int, model: str) -> list[list[str]]:
    from rewardhub.models import load_causal_lm
    from rewardhub.steering import LMGenerator

    lm, tok = load_causal_lm(model)
    out = []
    for i, p in enumerate(prompts):
        gen = LMGenerator(lm, tok, max_new_tokens=max_new, temperature=1.0, seed=2000 + i)
        out.append(list(gen([p], n)[0]))
    return out


def labelled_pairs(
    prompts: list[str], cands: list[list[str]], per_prompt: int, tau: float, seed: int
) -> list[Pair]:
    """Pairs of candidates of a prompt, the winner drawn from σ((g_a − g_b)/τ)."""
    rng = random.Random(seed)
    pairs = []
    for p, texts in zip(prompts, cands):
        g = [gold(p, t) for t in texts]
        for _ in range(per_prompt):
            a, b = rng.sample(range(len(texts)), 2)
            if texts[a] == texts[b]:
                continue
            p_a = 1 / (1 + np.exp(-(g[a] - g[b]) / tau))
            win, lose = (a, b) if rng.random() < p_a else (b, a)
            pairs.append(Pair(p, texts[win], texts[lose]))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small budgets (CI)")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        n_eval, n_train, cands, max_new, members, per_prompt = 3, 3, 8, 16, 3, 12
    else:
        n_eval, n_train, cands, max_new, members, per_prompt = 10, 10, 16, 32, 5, 40
    topics = TOPICS * 2
    eval_prompts = [f"Explain {t} in one or two sentences." for t in topics[:n_eval]]
    train_prompts = [f"Tell me briefly {t}." for t in topics[n_eval : n_eval + n_train]]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    texts = generate(train_prompts + eval_prompts, cands, max_new, args.model)
    gen_s = time.perf_counter() - t0
    train_c, eval_c = texts[:n_train], texts[n_train:]

    from rewardhub.models import embed, load_sentence_model

    st = load_sentence_model("minilm")
    memo: dict[str, np.ndarray] = {}

    def embed_fn(items: list[str]) -> np.ndarray:
        new = [t for t in items if t not in memo]
        if new:
            memo.update(zip(new, np.asarray(embed(st, new), dtype=np.float64)))
        return np.stack([memo[t] for t in items])

    t1 = time.perf_counter()
    pool = labelled_pairs(train_prompts, train_c, per_prompt, tau=0.1, seed=0)
    heads = []
    for s in range(members):
        rng = random.Random(100 + s)
        sample = [pool[rng.randrange(len(pool))] for _ in pool]  # bootstrap
        heads.append(train(sample, embed_fn, embedder="minilm", seed=s, epochs=200))
    train_s = time.perf_counter() - t1

    g = np.array([[gold(p, t) for t in ts] for p, ts in zip(eval_prompts, eval_c)])
    member_scores = np.stack(
        [
            np.array(
                [
                    h.rewards(features(embed_fn([p] * len(ts)), embed_fn(ts)), [None] * len(ts))
                    for p, ts in zip(eval_prompts, eval_c)
                ]
            )
            for h in heads
        ]
    )
    ns = [n for n in (1, 2, 4, 8, 16, 32) if n <= cands]
    proxies = {
        "gold (oracle)": g,
        "one head": member_scores[0],
        **{f"ensemble {k}": v for k, v in ensemble_proxies(member_scores).items()},
    }
    curves = overoptimization(proxies, g, ns)
    total_s = time.perf_counter() - t0
    acc = [h.report.get("heldout_accuracy") for h in heads]
    (args.out / "overoptimization.json").write_text(
        json.dumps({"curves": [c.to_dict() for c in curves]}, indent=1) + "\n"
    )
    _plot(curves, args.out / "overoptimization.png")
    lines = [
        "# Over-optimisation experiment",
        "",
        f"Made by `python benchmarks/overoptimization.py{' --quick' if args.quick else ''}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs (torch threads: {args.threads}). "
        f"SmolLM2 candidates: {n_eval} evaluation prompts × {cands} candidates ({max_new} new "
        f"tokens at most), generated in {gen_s:.0f} s. Proxy ensemble: {members} Bradley–Terry "
        f"heads on MiniLM embeddings, each on its own bootstrap of {len(pool)} gold-labelled "
        f"pairs (label noise τ = 0.1) from {n_train} other prompts, trained in {train_s:.0f} s; "
        f"held-out pairwise accuracy of the heads: "
        + ", ".join("-" if a is None else f"{a:.2f}" for a in acc)
        + ". Gold: the mean of brevity and coverage (benchmarks/steering_rewards.py).",
        "",
        "Mean over prompts of the gold reward of the candidate best-of-n keeps, exact from the "
        "candidates (docs/evaluation.md); KL bound log n − (n−1)/n.",
        "",
        "| proxy | " + " | ".join(f"n={n}" for n in ns) + " | gold gain n=1→max |",
        "|---|" + "---|" * (len(ns) + 1),
    ]
    for c in curves:
        lines.append(
            f"| {c.proxy} | "
            + " | ".join(f"{x:.3f}" for x in c.gold)
            + f" | {c.gold[-1] - c.gold[0]:+.3f} |"
        )
    lines += [
        "",
        "| n | KL bound | KL estimate (one head) |",
        "|---|---|---|",
    ]
    one = next(c for c in curves if c.proxy == "one head")
    for n, kb, ke in zip(one.n, one.kl_bound, one.kl_estimate):
        lines.append(f"| {n} | {kb:.3f} | {ke:.3f} |")
    lines += ["", "![gold reward against KL](overoptimization.png)", ""]
    lines.append(f"Wall time of the whole run: {total_s:.0f} s.")
    name = "overoptimization_quick.md" if args.quick else "overoptimization.md"
    (args.out / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _plot(curves: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for c in curves:
        ax.plot(c.kl_bound, c.gold, marker="o", label=c.proxy)
    ax.set_xlabel("KL(best-of-n ‖ base), bound (nats)")
    ax.set_ylabel("gold reward of the selected candidate")
    ax.set_title("best-of-n: gold reward by proxy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
