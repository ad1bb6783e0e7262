"""Bradley–Terry preference heads on frozen sentence embeddings, with PAL-style mixtures.

A head maps the features of (prompt, completion) — the completion's embedding and its
elementwise product with the prompt's — to a reward, trained so that
``P(chosen ≻ rejected) = σ(r(chosen) − r(rejected))``. With ``mixture: K`` it learns K
prototype heads and, per user, mixing weights over them (pluralistic alignment, as in PAL);
a user never seen in training gets the population mixture (the mean of the users' weights).

A head is saved as a directory: ``config.json`` and ``weights.npz`` (plain arrays, loaded with
``allow_pickle=False``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardhub.errors import InputError, SourceError
from rewardhub.types import FloatArray

FORMAT = "rewardhub-preference-head/1"


@dataclass(frozen=True)
class Pair:
    """One preference: ``chosen`` is preferred to ``rejected`` for ``prompt`` (by ``user``)."""

    prompt: str
    chosen: str
    rejected: str
    user: str | None = None


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs from a JSONL file of ``{prompt, chosen, rejected, user?/group?}`` objects."""
    pairs: list[Pair] = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: invalid JSON ({exc.msg})", lineno) from None
            if not isinstance(obj, dict):
                raise InputError(
                    f"{path}: expected an object with prompt, chosen, rejected", lineno
                )
            missing = [
                k for k in ("prompt", "chosen", "rejected") if not isinstance(obj.get(k), str)
            ]
            if missing:
                raise InputError(f"{path}: field(s) {missing} missing or not strings", lineno)
            user = obj.get("user", obj.get("group"))
            pairs.append(
                Pair(
                    obj["prompt"],
                    obj["chosen"],
                    obj["rejected"],
                    None if user is None else str(user),
                )
            )
    if len(pairs) < 2:
        raise InputError(f"{path} has {len(pairs)} preference pair(s); need at least 2")
    return pairs


def features(prompt_emb: FloatArray, completion_emb: FloatArray) -> FloatArray:
    """[completion, prompt ⊙ completion]: what the answer says, and how it relates to the ask."""
    return np.concatenate([completion_emb, prompt_emb * completion_emb], axis=1)


@dataclass
class PreferenceHead:
    """K prototype linear heads over the features, and per-user mixing weights over them."""

    embedder: str
    prototypes: FloatArray  # K × d
    users: list[str] = field(default_factory=list)
    user_weights: FloatArray = field(
        default_factory=lambda: np.zeros((0, 1))
    )  # U × K, rows sum to 1
    population: FloatArray = field(default_factory=lambda: np.ones(1))  # K, sums to 1
    fail_value: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)

    def mixture(self, users: Sequence[str | None]) -> FloatArray:
        """Mixing weights per sample (n × K); unknown or missing users get the population's."""
        index = {u: i for i, u in enumerate(self.users)}
        return (
            np.stack(
                [self.user_weights[index[u]] if u in index else self.population for u in users]
            )
            if users
            else np.zeros((0, len(self.population)))
        )

    def rewards(self, feats: FloatArray, users: Sequence[str | None]) -> FloatArray:
        """One reward per row of ``feats``: Σ_k w_user,k · (prototype_k · φ)."""
        per_proto = feats.astype(np.float64) @ self.prototypes.T  # n × K
        out: FloatArray = (per_proto * self.mixture(users)).sum(axis=1)
        return out

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(
            d / "weights.npz",
            prototypes=self.prototypes,
            user_weights=self.user_weights,
            population=self.population,
        )
        config = {
            "format": FORMAT,
            "embedder": self.embedder,
            "mixture": int(self.prototypes.shape[0]),
            "users": self.users,
            "fail_value": self.fail_value,
            "report": self.report,
        }
        (d / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> PreferenceHead:
        d = Path(directory)
        try:
            config = json.loads((d / "config.json").read_text(encoding="utf-8"))
            with np.load(d / "weights.npz", allow_pickle=False) as w:
                arrays = {k: np.asarray(w[k], dtype=np.float64) for k in w.files}
        except FileNotFoundError as exc:
            raise SourceError(
                f"{d} is not a preference head ({Path(exc.filename or '').name} missing); "
                "train one with: rewardhub train preference-head DATA.jsonl -o DIR"
            ) from None
        if config.get("format") != FORMAT:
            raise SourceError(
                f"{d}/config.json has format {config.get('format')!r}, expected {FORMAT!r}"
            )
        head = cls(
            embedder=str(config["embedder"]),
            prototypes=arrays["prototypes"],
            users=[str(u) for u in config.get("users", [])],
            user_weights=arrays["user_weights"],
            population=arrays["population"],
            fail_value=float(config.get("fail_value", 0.0)),
            report=dict(config.get("report", {})),
        )
        k = head.prototypes.shape[0]
        if head.population.shape != (k,) or head.user_weights.shape != (len(head.users), k):
            raise SourceError(f"{d}: weights.npz shapes do not match config.json (mixture {k})")
        return head


def chance_bound(n: int, alpha: float = 0.01) -> float:
    """The accuracy that guessing (p = 0.5) exceeds with probability < ``alpha`` on ``n`` pairs."""
    from scipy.stats import binom

    return float(binom.ppf(1 - alpha, n, 0.5)) / n if n else 1.0


def pairwise_accuracy(
    head: PreferenceHead, fc: FloatArray, fr: FloatArray, users: Sequence[str | None]
) -> float | None:
    """The fraction of pairs the head ranks the right way round (None without pairs)."""
    if len(fc) == 0:
        return None
    return float(np.mean(head.rewards(fc, users) > head.rewards(fr, users)))


def train(
    pairs: Sequence[Pair],
    embed_fn: Callable[[list[str]], FloatArray],
    *,
    embedder: str,
    mixture: int = 1,
    epochs: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
    holdout: float = 0.2,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> PreferenceHead:
    """Fit a head on ``pairs`` (full-batch Adam on frozen embeddings); the held-out split's
    pairwise accuracy and its chance bound go in ``head.report``."""
    from rewardhub._optional import require

    torch = require("torch", "models", "training a preference head")
    if mixture < 1:
        raise InputError(f"mixture must be ≥ 1, got {mixture}")
    if not 0 <= holdout < 1:
        raise InputError(f"holdout must be in [0, 1), got {holdout}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_test = round(len(pairs) * holdout)
    test, fit = order[:n_test], order[n_test:]
    if not fit:
        raise InputError(f"no pairs left to train on ({len(pairs)} pairs, holdout {holdout})")

    texts = sorted({t for p in pairs for t in (p.prompt, p.chosen, p.rejected)})
    pos = {t: i for i, t in enumerate(texts)}
    emb = np.asarray(embed_fn(texts), dtype=np.float64)

    def feats(idx: Sequence[int], side: str) -> FloatArray:
        pe = emb[[pos[pairs[i].prompt] for i in idx]]
        ce = emb[[pos[getattr(pairs[i], side)] for i in idx]]
        return features(pe, ce)

    fc, fr = feats(fit, "chosen"), feats(fit, "rejected")
    users = sorted({p.user for p in pairs if p.user is not None})
    uidx: dict[str, int] = {u: i + 1 for i, u in enumerate(users)}  # row 0: pairs without a user
    fit_users = torch.tensor([uidx.get(pairs[i].user or "", 0) for i in fit])

    # a few hundred small full-batch steps: one thread is much faster than a contended pool
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        d = fc.shape[1]
        w = (torch.randn(mixture, d, generator=gen, dtype=torch.float64) * 0.01).requires_grad_()
        logits = torch.zeros(len(users) + 1, mixture, dtype=torch.float64)
        if mixture > 1:  # break the symmetry between prototypes
            logits += torch.randn(logits.shape, generator=gen, dtype=torch.float64) * 0.1
        logits.requires_grad_()
        opt = torch.optim.Adam([w, logits], lr=lr)
        diff = torch.from_numpy(fc - fr)
        for epoch in range(epochs):
            opt.zero_grad()
            mix = torch.softmax(logits[fit_users], dim=1)  # n × K
            margin = ((diff @ w.T) * mix).sum(dim=1)
            loss = -torch.nn.functional.logsigmoid(margin).mean() + weight_decay * (w**2).sum()
            loss.backward()
            opt.step()
            if progress is not None:
                progress(epoch + 1, epochs, loss.item())
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        weights = torch.softmax(logits, dim=1).numpy()
    user_weights = weights[1:]
    seen = [0] if any(pairs[i].user is None for i in fit) else []
    population = weights[[*seen, *range(1, len(users) + 1)]].mean(axis=0)
    head = PreferenceHead(
        embedder=embedder,
        prototypes=w.detach().numpy().copy(),
        users=users,
        user_weights=user_weights,
        population=population / population.sum(),
    )
    all_f = np.concatenate([fc, fr])
    all_u = [pairs[i].user for i in fit] * 2
    head.fail_value = float(head.rewards(all_f, all_u).min())  # worst score of a training answer
    test_users = [pairs[i].user for i in test]
    head.report = {
        "pairs": len(pairs),
        "train_pairs": len(fit),
        "heldout_pairs": len(test),
        "train_accuracy": pairwise_accuracy(head, fc, fr, [pairs[i].user for i in fit]),
        "heldout_accuracy": pairwise_accuracy(
            head, feats(test, "chosen"), feats(test, "rejected"), test_users
        ),
        "chance_bound_p01": chance_bound(len(test)),
        "mixture": mixture,
        "users": len(users),
        "seed": seed,
    }
    return head
