"""The steering experiment: plain sampling vs best-of-n vs weighted controlled decoding vs RMOD
on SmolLM2-135M-Instruct (CPU), with two conflicting objectives (benchmarks/steering.yaml).

    python benchmarks/steering.py            # 30 prompts, n = K = 8, B = 8: the committed table
    python benchmarks/steering.py --quick    # 3 prompts, small budgets: what CI runs

Writes benchmarks/results/steering.md (or --out DIR) with the mean of each objective and of
the worst objective per method (95% t-intervals over prompts), the latency of RMOD against
weighted controlled decoding, and a best-of-n reward-vs-n plot with the KL bound (PNG).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

import rewardhub as rh
from rewardhub.models import load_causal_lm
from rewardhub.steering import (
    LMGenerator,
    best_of_n,
    bon_curve,
    bon_kl_bound,
    bon_kl_estimate,
    controlled_decode,
)

HERE = Path(__file__).resolve().parent
TOPICS = [
    "why the sky is blue",
    "how vaccines work",
    "what inflation is",
    "why we sleep",
    "how a rainbow forms",
    "what gravity does",
    "how plants make food",
    "why ice floats",
    "what a computer program is",
    "how the heart pumps blood",
    "why leaves change colour",
    "what an atom is",
    "how bees make honey",
    "why the moon has phases",
    "what a volcano is",
    "how a bicycle stays upright",
    "why salt melts ice",
    "what the internet is",
    "how a battery stores energy",
    "why we have seasons",
    "what DNA does",
    "how clouds form",
    "why bread rises",
    "what a black hole is",
    "how a fridge keeps food cold",
    "why the sea is salty",
    "what friction is",
    "how a compass works",
    "why cats purr",
    "what recycling achieves",
    "how an airplane flies",
    "what a fever does",
]


def ci95(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval."""
    x = np.asarray(x, dtype=float)
    if x.size < 2:
        return float(x.mean()), float("nan")
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(half)


def raw(pipe: rh.Pipeline, prompt: str, texts: list[str]) -> np.ndarray:
    return pipe.vector([rh.Sample(prompt=prompt, completion=t) for t in texts]).values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 prompts, small budgets (CI)")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared 2-core box, 2 threads per process spin against "
        "other work and ran a forward pass 50x slower)",
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    n_prompts, n, k, block, max_new = (3, 4, 4, 8, 16) if args.quick else (30, 8, 8, 8, 48)
    prompts = [f"Explain {t} in one or two sentences." for t in TOPICS[:n_prompts]]
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    model, tok = load_causal_lm(args.model)
    load_s = time.perf_counter() - t0
    pipe = rh.Pipeline.from_yaml(HERE / "steering.yaml")
    objectives = list(pipe.objectives)
    values: dict[str, list[np.ndarray]] = {m: [] for m in ("plain", "bon", "cd", "rmod")}
    seconds = dict.fromkeys(values, 0.0)
    blocks = {"cd": 0, "rmod": 0}
    curves, kl_est = [], []
    for i, prompt in enumerate(prompts):
        seed = 1000 + i
        t = time.perf_counter()
        text = LMGenerator(model, tok, max_new_tokens=max_new, seed=seed)([prompt], 1)[0][0]
        seconds["plain"] += time.perf_counter() - t
        values["plain"].append(raw(pipe, prompt, [text])[0])

        t = time.perf_counter()
        gen = LMGenerator(model, tok, max_new_tokens=max_new, seed=seed)
        [res] = best_of_n([prompt], gen, pipe, n=n, seed=seed)
        seconds["bon"] += time.perf_counter() - t
        values["bon"].append(raw(pipe, prompt, [res.text])[0])
        totals = np.array([c.total for c in res.candidates])
        curves.append(bon_curve(totals))
        kl_est.append(bon_kl_estimate(totals, n))

        for method, rule in (("cd", "weighted"), ("rmod", "robust")):
            t = time.perf_counter()
            [res] = controlled_decode(
                [prompt],
                model,
                tok,
                pipe,
                rule=rule,
                k=k,
                block=block,
                max_new_tokens=max_new,
                seed=seed,
            )
            seconds[method] += time.perf_counter() - t
            blocks[method] += res.info["blocks"]
            values[method].append(raw(pipe, prompt, [res.text])[0])
        print(f"[{i + 1}/{len(prompts)}] {time.perf_counter() - t0:.0f}s", file=sys.stderr)

    rows = []
    for method, label in (
        ("plain", "plain sampling"),
        ("bon", f"best-of-{n} (max-min total)"),
        ("cd", f"controlled decoding, weighted (K={k}, B={block})"),
        ("rmod", f"RMOD (K={k}, B={block}, λ=1)"),
    ):
        v = np.array(values[method])
        cells = [ci95(v[:, j]) for j in range(len(objectives))] + [ci95(v.min(axis=1))]
        rows.append((label, cells, seconds[method] / len(prompts)))
    # the rules keep different candidates, so their texts end after different numbers of
    # blocks: compare the time per block (K candidates generated, scored and one kept)
    per_block = {m: seconds[m] / max(blocks[m], 1) for m in blocks}
    latency = per_block["rmod"] / per_block["cd"]
    curve = np.mean(curves, axis=0)
    _plot(curve, args.out / "steering_bon.png")

    head = " | ".join(objectives)
    lines = [
        "# Steering experiment",
        "",
        f"Made by `python benchmarks/steering.py{' --quick' if args.quick else ''}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs (torch threads: "
        f"{torch.get_num_threads()}), model `{args.model}` "
        f"(load {load_s:.1f} s), {len(prompts)} prompts, {max_new} new tokens at most, "
        "seeds 1000 + prompt index. Objectives (benchmarks/steering_rewards.py): brevity "
        "(1 at 100 characters, 0 at 0 or 200) against coverage (fraction of 8 explanation "
        "markers); both in [0, 1]. Means over prompts with 95% t-intervals.",
        "",
        f"| method | {head} | worst objective | s / prompt |",
        "|---|" + "---|" * (len(objectives) + 2),
    ]
    for label, cells, sec in rows:
        fmt = " | ".join(f"{m:.3f} ± {h:.3f}" for m, h in cells)
        lines.append(f"| {label} | {fmt} | {sec:.2f} |")
    lines += [
        "",
        f"RMOD latency vs weighted controlled decoding, per block: **{latency:.3f}×** "
        f"({per_block['rmod'] * 1e3:.0f} ms vs {per_block['cd'] * 1e3:.0f} ms a block; "
        f"{blocks['rmod']} vs {blocks['cd']} blocks, {seconds['rmod']:.1f} s vs "
        f"{seconds['cd']:.1f} s in all; goal ≤ 1.10×).",
        "",
        f"Best-of-n (max-min total), from the {n} candidates per prompt (unbiased "
        "order-statistics estimate, mean over prompts):",
        "",
        "| n | E[max-of-n total] | KL bound log n − (n−1)/n |",
        "|---|---|---|",
    ]
    lines += [f"| {j + 1} | {c:.3f} | {bon_kl_bound(j + 1):.3f} |" for j, c in enumerate(curve)]
    lines += [
        "",
        f"KL estimate of best-of-{n} from the candidates' totals (tie-aware, "
        f"docs/steering.md): mean {np.nanmean(kl_est):.3f} against the bound "
        f"{bon_kl_bound(n):.3f}.",
        "",
        "![best-of-n reward vs n](steering_bon.png)",
        "",
    ]
    name = "steering_quick.md" if args.quick else "steering.md"
    (args.out / name).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


def _plot(curve: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = np.arange(1, curve.size + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ns, curve, marker="o", label="E[max-of-n] (max-min total)")
    ax.set_xlabel("n")
    ax.set_ylabel("reward")
    top = ax.secondary_xaxis("top", functions=(_kl_of_n, _n_of_kl))
    top.set_xlabel("KL bound (nats)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _kl_of_n(n: Any) -> Any:
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    return np.log(n) - (n - 1) / n


def _n_of_kl(kl: Any) -> Any:
    # invert log n − (n−1)/n (increasing in n ≥ 1) on a grid
    grid = np.linspace(1, 1000, 200_000)
    return np.interp(kl, _kl_of_n(grid), grid)


if __name__ == "__main__":
    main()
