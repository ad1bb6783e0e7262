"""``hf-classifier``: a Hugging Face sequence-classification reward model (one or more heads).

A text longer than the model's window is scored in windows by default (``overflow``,
``_windows``): each window is the prompt with a consecutive part of the completion."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rewardhub._optional import require
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.models import (
    check_deadline,
    length_buckets,
    local_only,
    pad_batch,
    resolve_model,
    torch_device,
)
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Scores
from rewardhub.sources._windows import WindowConfig, reduce, spans
from rewardhub.types import Sample

log = logging.getLogger(__name__)
#: tokens a window leaves free: its text may tokenise a little longer inside the template
_WINDOW_MARGIN = 2


class Transform(BaseModel):
    """``scale · logit + shift``, then the sigmoid when ``sigmoid`` is true."""

    model_config = ConfigDict(extra="forbid")
    scale: float = 1.0
    shift: float = 0.0
    sigmoid: bool = False

    def __call__(self, x: float) -> float:
        y = self.scale * x + self.shift
        if self.sigmoid:
            y = 1.0 / (1.0 + math.exp(-y)) if y >= 0 else math.exp(y) / (1.0 + math.exp(y))
        return y


def chat_messages(sample: Sample) -> list[dict[str, Any]]:
    """The sample as a conversation: the prompt's messages (or one user turn), then the answer."""
    prompt = (
        list(sample.prompt)
        if isinstance(sample.prompt, list)
        else [{"role": "user", "content": sample.prompt}]
    )
    return [*prompt, {"role": "assistant", "content": sample.completion}]


class HFClassifierConfig(WindowConfig):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="local directory of an AutoModelForSequenceClassification")
    heads: dict[int, str] = Field(
        default_factory=lambda: {0: "reward"},
        description="output index → objective name, e.g. {0: helpful, 1: harmless}",
    )
    transform: dict[str, Transform | Literal["sigmoid"]] = Field(
        default_factory=dict, description="objective → {scale, shift, sigmoid} or 'sigmoid'"
    )
    chat_template: bool = Field(True, description="use the tokenizer's chat template if it has one")
    join: str = Field(
        "{prompt}\n\n{completion}", description="text of a sample without a chat template"
    )
    max_length: int | None = Field(
        None, gt=1, description="tokens per text (default: the model's context); see overflow"
    )
    batch_size: int = Field(32, gt=0, description="rows per forward pass")
    max_tokens_per_batch: int = Field(
        16384, gt=0, description="padded tokens per forward pass (bounds memory)"
    )
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field("cpu", description="cpu, cuda, cuda:1, ... or auto")
    fail_value: float = Field(
        0.0, description="score of a failed check (empty answer, overflow: fail); set ≤ the worst"
    )

    @field_validator("heads")
    @classmethod
    def _heads(cls, v: dict[int, str]) -> dict[int, str]:
        if not v:
            raise ValueError("heads is empty; map at least one output index to an objective")
        if len(set(v.values())) != len(v):
            raise ValueError(f"heads map two outputs to the same objective: {v}")
        if min(v) < 0:
            raise ValueError(f"head indices must be ≥ 0, got {sorted(v)}")
        return v

    @field_validator("join")
    @classmethod
    def _join(cls, v: str) -> str:
        try:
            v.format(prompt="", completion="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"join may only use {{prompt}} and {{completion}} (double other braces): {exc}"
            ) from None
        return v


class HFClassifier(RewardSource):
    """A sequence-classification reward model from a local directory; heads → objectives."""

    type = "hf-classifier"
    Config = HFClassifierConfig
    summary = "Hugging Face sequence-classification reward model (heads → objectives)"
    #: scores of one sample may differ by this (relative) across batchings: float32 forward
    #: passes round differently with the batch's padding and shape (the conformance kit)
    tolerance: ClassVar[float] = 1e-5

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        self.path = resolve_model(c.model)
        transformers = require("transformers", "models", "hf-classifier")
        mconf = transformers.AutoConfig.from_pretrained(
            self.path, local_files_only=local_only(self.path), trust_remote_code=False
        )
        n = int(getattr(mconf, "num_labels", 0))
        bad = sorted(h for h in c.heads if h >= n)
        if bad:
            raise SourceError(
                f"heads {bad} do not exist: model {c.model!r} has {n} output(s) "
                f"(indices 0..{n - 1}); fix `heads`"
            )
        unknown = sorted(set(c.transform) - set(c.heads.values()))
        if unknown:
            raise SourceError(
                f"transform names unknown objective(s) {unknown}; heads give {list(c.heads.values())}"
            )
        self._context = int(getattr(mconf, "max_position_embeddings", 0) or 0)

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.heads[h] for h in sorted(config.heads))

    def fail_values(self) -> tuple[float, ...]:
        return (float(self.config.fail_value),) * len(self.config.heads)

    @cached_property
    def _tokenizer(self) -> Any:
        transformers = require("transformers", "models", "hf-classifier")
        tok = transformers.AutoTokenizer.from_pretrained(
            self.path, local_files_only=local_only(self.path), trust_remote_code=False
        )
        if tok.pad_token_id is None:
            if tok.eos_token_id is None:
                raise SourceError(
                    f"the tokenizer of {self.config.model!r} has neither a pad token nor an eos "
                    "token to pad with; set tokenizer.pad_token and save it again"
                )
            tok.pad_token = tok.eos_token
        return tok

    @cached_property
    def _model(self) -> Any:
        transformers = require("transformers", "models", "hf-classifier")
        torch = require("torch", "models", "hf-classifier")
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            self.path,
            local_files_only=local_only(self.path),
            dtype=getattr(torch, self.config.dtype),
            trust_remote_code=False,
        )
        if model.config.pad_token_id is None:  # models that pool at the last non-pad token
            model.config.pad_token_id = self._tokenizer.pad_token_id
        return model.to(torch_device(self.config.device)).eval()

    def _max_length(self) -> int:
        tok_max = int(getattr(self._tokenizer, "model_max_length", 0) or 0)
        limits = [x for x in (self.config.max_length, self._context, tok_max) if x and x < 10**8]
        return min(limits) if limits else 512

    def text(self, sample: Sample) -> str:
        """What the model reads: the chat template's conversation, or the ``join`` template."""
        tok = self._tokenizer
        if self.config.chat_template and getattr(tok, "chat_template", None):
            out: str = tok.apply_chat_template(chat_messages(sample), tokenize=False)
            return out
        return str(self.config.join.format(prompt=sample.prompt_text, completion=sample.completion))

    def _ids(self, texts: list[str]) -> list[list[int]]:
        tok = self._tokenizer
        templated = self.config.chat_template and bool(getattr(tok, "chat_template", None))
        # a chat template writes its own special tokens; a plain join gets the tokenizer's
        out: list[list[int]] = tok(texts, add_special_tokens=not templated)["input_ids"]
        return out

    def encode(self, samples: list[Sample]) -> tuple[list[list[int]], list[bool]]:
        """Token ids per sample (cut at max_length) and whether each was cut."""
        ids = self._ids([self.text(s) for s in samples])
        limit = self._max_length()
        return [list(r[:limit]) for r in ids], [len(r) > limit for r in ids]

    def _windows(self, sample: Sample, ids: list[int]) -> list[list[int]] | Fail | Abstain:
        """What the model reads for one sample: its ids, or (too long) its windows under
        ``overflow``: each window is the prompt with a consecutive part of the completion."""
        limit, how = self._max_length(), self.config.overflow
        if len(ids) <= limit:
            return [ids]
        if how == "fail":
            return Fail(f"longer than max_length {limit} tokens; overflow: fail")
        if how == "truncate":
            return [ids[:limit]]
        bare = len(self._ids([self.text(replace(sample, completion=""))])[0])
        # a margin: a window's text may tokenise a little longer inside the template
        size = limit - bare - _WINDOW_MARGIN
        if size < 1:
            return Abstain(f"the prompt alone fills the model's {limit} tokens")
        parts = [sample.completion[a:b] for a, b in spans(self._tokenizer, sample.completion, size)]
        texts = [self.text(replace(sample, completion=p)) for p in parts]
        return [w[:limit] for w in self._ids(texts)]

    def truncated_tokens(self, samples: Sequence[Sample]) -> list[int]:
        """Tokens cut from each sample's text (only under ``overflow: truncate``)."""
        if self.config.overflow != "truncate" or not samples:
            return [0] * len(samples)
        limit = self._max_length()
        return [max(0, len(r) - limit) for r in self._ids([self.text(s) for s in samples])]

    def score(self, samples: list[Sample]) -> Scores:
        torch = require("torch", "models", "hf-classifier")
        if not samples:  # the tokenizer cannot encode an empty list
            return []
        ids = self._ids([self.text(s) for s in samples])
        heads = sorted(self.config.heads)
        transforms = [self.config.transform.get(self.config.heads[h]) for h in heads]
        fns = [Transform(sigmoid=True) if t == "sigmoid" else t for t in transforms]
        rows: list[Any] = [None] * len(samples)
        todo: list[tuple[int, list[int]]] = []  # (sample, ids of one window)
        for i, s in enumerate(samples):
            plan = [] if not s.completion.strip() else self._windows(s, ids[i])
            if not s.completion.strip():
                rows[i] = Fail("empty completion")
            elif isinstance(plan, (Fail, Abstain)):
                rows[i] = plan
            else:
                todo += [(i, w) for w in plan]
        cut = sum(len(ids[i]) > self._max_length() for i in {i for i, _ in todo})
        if cut and self.config.overflow == "truncate":
            log.info("hf-classifier: %d text(s) cut at %d tokens", cut, self._max_length())
        model = self._model
        device = next(model.parameters()).device
        pad = self._tokenizer.pad_token_id
        c = self.config
        scores: dict[int, list[list[float]]] = {}
        with torch.inference_mode():
            for bucket in length_buckets(
                [len(w) for _, w in todo], c.batch_size, c.max_tokens_per_batch
            ):
                check_deadline()
                input_ids, mask = pad_batch([todo[b][1] for b in bucket], pad)
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device)
                ).logits
                out = logits.float()[:, heads].cpu().tolist()
                for b, row in zip(bucket, out):
                    values = [f(x) if f is not None else x for f, x in zip(fns, row)]
                    scores.setdefault(todo[b][0], []).append(values)
        for i, windows in scores.items():
            rows[i] = [reduce(col, c.window_reduce) for col in zip(*windows)]
        return rows

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_model", None)  # reloaded lazily in the worker
        state.pop("_tokenizer", None)
        return state


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(HFClassifier)
