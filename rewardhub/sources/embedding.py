"""Sources on sentence embeddings: ``embedding-similarity`` and ``preference-head``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rewardhub.hookspecs import hookimpl
from rewardhub.models import embed, load_sentence_model
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Scores
from rewardhub.sources._windows import WindowConfig, count_tokens, reduce, spans
from rewardhub.types import Sample


class _Embedding(RewardSource):
    """Shared: a lazily loaded sentence-transformers model, dropped when pickled."""

    #: scores of one sample may differ by this (relative) across batchings: float32 forward
    #: passes round differently with the batch's padding and shape (the conformance kit)
    tolerance: ClassVar[float] = 1e-5

    def _model_name(self) -> str:
        return str(self.config.model)

    @cached_property
    def _model(self) -> Any:
        return load_sentence_model(self._model_name(), device=self.config.device)

    def embed(self, texts: list[str]) -> Any:
        return embed(self._model, texts, self.config.batch_size)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_model", None)
        return state


class SimilarityConfig(WindowConfig):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("minilm", description="sentence-transformers model dir, or minilm")
    exemplars: list[str] = Field(
        default_factory=list, description="good answers to compare with (besides the reference)"
    )
    reduce: Literal["max", "mean"] = Field("max", description="over several references/exemplars")
    objective: str = "similarity"
    batch_size: int = Field(64, gt=0)
    device: str = "cpu"


class EmbeddingSimilarity(_Embedding):
    """Cosine similarity of the completion to the reference (or exemplars), in [-1, 1]; a
    completion longer than the model's window is scored in windows (``overflow``)."""

    type = "embedding-similarity"
    Config = SimilarityConfig
    fail_value = -1.0  # an empty answer: the least similar there is

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def _targets(self, s: Sample) -> list[str]:
        ref = s.reference
        refs = (
            [ref] if isinstance(ref, str) else list(ref) if isinstance(ref, (list, tuple)) else []
        )
        return [str(r) for r in refs if str(r).strip()] + list(self.config.exemplars)

    def _window(self) -> tuple[Any, int]:
        """The model's tokenizer and how many completion tokens one window holds."""
        tok = self._model.tokenizer
        size = int(self._model.max_seq_length) - int(tok.num_special_tokens_to_add(pair=False))
        return tok, size

    def _pieces(self, completion: str) -> list[str] | Fail:
        """The texts to embed for a completion: its windows, its first window, or a Fail."""
        tok, size = self._window()
        cuts = spans(tok, completion, size)
        if len(cuts) == 1:
            return [completion]
        if self.config.overflow == "fail":
            return Fail(f"longer than the model's window ({size} tokens); overflow: fail")
        if self.config.overflow == "truncate":
            return [completion[: cuts[0][1]]]
        return [completion[a:b] for a, b in cuts]

    def truncated_tokens(self, samples: Sequence[Sample]) -> list[int]:
        """Tokens cut from each sample's completion (only under ``overflow: truncate``)."""
        if self.config.overflow != "truncate":
            return [0] * len(samples)
        tok, size = self._window()
        return [max(0, count_tokens(tok, s.completion) - size) for s in samples]

    def score(self, samples: list[Sample]) -> Scores:
        targets = [self._targets(s) for s in samples]
        pieces = [
            self._pieces(s.completion) if s.completion.strip() and ts else []
            for s, ts in zip(samples, targets)
        ]
        texts = {t for ts in targets for t in ts}
        texts |= {p for ps in pieces if isinstance(ps, list) for p in ps}
        order = sorted(texts)
        vec = dict(zip(order, self.embed(order)))
        rows: list[Any] = []
        for s, ts, ps in zip(samples, targets, pieces):
            if not s.completion.strip():
                rows.append(Fail("empty completion"))
            elif not ts:
                rows.append(Abstain("no reference and no exemplars to compare with"))
            elif isinstance(ps, Fail):
                rows.append(ps)
            else:
                per_window = []
                for p in ps:
                    sims = np.array([float(vec[p] @ vec[t]) for t in ts])
                    per_window.append(
                        float(sims.max() if self.config.reduce == "max" else sims.mean())
                    )
                val = reduce(per_window, self.config.window_reduce)
                rows.append([float(np.clip(val, -1.0, 1.0))])
        return rows


class PreferenceHeadConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="directory written by `rewardhub train preference-head`")
    objective: str = "preference"
    user_key: str = Field("user", description="metadata key of the user (PAL mixtures)")
    embedder: str | None = Field(None, description="override the embedder saved with the head")
    batch_size: int = Field(64, gt=0)
    device: str = "cpu"


class PreferenceHeadSource(_Embedding):
    """A trained Bradley–Terry head on frozen sentence embeddings (per-user with a mixture)."""

    type = "preference-head"
    Config = PreferenceHeadConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        from rewardhub.models import local_path
        from rewardhub.preference import PreferenceHead

        self._head_dir = local_path(self.config.path)
        self.head = PreferenceHead.load(self._head_dir)
        # a relative embedder path saved with the head is relative to where it was trained
        self._embedder = self.config.embedder or self.head.embedder

    def cache_files(self) -> Sequence[Path]:
        """The head's files: a head retrained into the same folder is a new cache key."""
        return tuple(sorted(p for p in Path(self._head_dir).iterdir() if p.is_file()))

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def fail_values(self) -> tuple[float, ...]:
        return (self.head.fail_value,)  # the worst score the head gave a training answer

    def _model_name(self) -> str:
        return str(self._embedder)

    def score(self, samples: list[Sample]) -> Scores:
        from rewardhub.preference import features

        if not samples:
            return []
        texts = sorted({s.prompt_text for s in samples} | {s.completion for s in samples})
        vec = dict(zip(texts, self.embed(texts)))
        pe = np.stack([vec[s.prompt_text] for s in samples])
        ce = np.stack([vec[s.completion] for s in samples])
        users = [_user(s.metadata.get(self.config.user_key)) for s in samples]
        r = self.head.rewards(features(pe, ce), users)
        return [
            Fail("empty completion") if not s.completion.strip() else [float(x)]
            for s, x in zip(samples, r)
        ]


def _user(u: Any) -> str | None:
    return None if u is None else str(u)


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(EmbeddingSimilarity)
    registry.add(PreferenceHeadSource)
