"""``llm-judge``: a local causal LM rates a completion against a rubric.

The score is the expectation of the rating under the model's next-token probabilities over the
rating tokens, and the std of that distribution is the sample's uncertainty. By default each
sentence of the answer is rated alone with the question and the answer earns its weakest
sentence's rating (``_judge_segments``): a rating claim in a sentence of its own cannot lift it. The rubric prompt,
its escaping and the rating scales are shared with ``openai-judge``. The input is built from
token ids: the completion is neutralised and tokenised alone with special tokens disallowed,
so it cannot write the model's turn markers (``_judge_tokens``).

Outcomes: a judge that puts (almost) no probability on any rating token gave no rating; the
prompt template is fixed, so that is the completion's doing (an injection that derails the
judge): a failed check, scored at the lowest rating. A judge that cannot run (no model, no
context room for the rubric) could not score: abstain with the reason.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import Field

from rewardhub._optional import require
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.models import check_deadline, length_buckets, load_causal_lm, pad_batch, torch_device
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Scores
from rewardhub.sources._judge_prompt import (
    SCALES,
    SYSTEM,
    JudgeConfig,
    Rating,
    answer_block,
    escape,
    judge_messages,
    neutralize,
    scale_of,
    scores_of,
)
from rewardhub.sources._judge_segments import sentences, weakest
from rewardhub.sources._judge_tokens import Template, data_ids, sample_texts, self_check, template
from rewardhub.types import Sample

__all__ = [
    "SCALES",
    "SYSTEM",
    "JudgeConfig",
    "LLMJudge",
    "LLMJudgeConfig",
    "answer_block",
    "escape",
    "judge_messages",
    "moments",
    "neutralize",
    "scale_of",
]


def moments(probs: list[float], values: tuple[float, ...]) -> tuple[float, float, float]:
    """(mean, std, mass) of a rating distribution given unnormalised probabilities."""
    mass = sum(probs)
    mean = sum(p * v for p, v in zip(probs, values)) / mass
    var = sum(p * (v - mean) ** 2 for p, v in zip(probs, values)) / mass
    return mean, math.sqrt(max(var, 0.0)), mass


class LLMJudgeConfig(JudgeConfig):
    model: str = Field("smollm2", description="local causal LM directory, or smollm2")
    segments: Literal["min", "whole"] = Field(
        "min",
        description="min: rate each sentence alone with the question, the answer earns the "
        "lowest (text in a sentence of its own cannot lift it); whole: rate the answer at once",
    )
    min_mass: float = Field(
        0.1, ge=0, le=1, description="least probability on rating tokens to count as a rating"
    )
    max_length: int | None = Field(None, gt=16, description="context limit (default: model's)")
    batch_size: int = Field(8, gt=0)
    max_tokens_per_batch: int = Field(8192, gt=0)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"


class LLMJudge(RewardSource):
    """A local causal LM as a rubric judge: expected rating, and its std as uncertainty."""

    type = "llm-judge"
    Config = LLMJudgeConfig
    summary = "local LLM rubric judge: expected rating under next-token probabilities, with std"
    #: scores of one sample may differ by this (relative) across batchings: float32 forward
    #: passes round differently with the batch's padding and shape (the conformance kit)
    tolerance: ClassVar[float] = 1e-5

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def fail_values(self) -> tuple[float, ...]:
        return (min(scale_of(self.config)[1]),)

    @cached_property
    def _lm(self) -> tuple[Any, Any, list[list[int]], Template]:
        c = self.config
        model, tok = load_causal_lm(c.model, dtype=c.dtype)
        model = model.to(torch_device(c.device))
        if tok.pad_token_id is None:
            if tok.eos_token_id is None:
                raise SourceError(f"the tokenizer of {c.model!r} has neither pad nor eos token")
            tok.pad_token = tok.eos_token
        self_check(tok)
        labels = scale_of(c)[0]
        ids: list[list[int]] = []
        for label in labels:
            variants = {label, label.lower(), " " + label, " " + label.lower()}
            singles = {
                enc[0] for v in variants if len(enc := tok.encode(v, add_special_tokens=False)) == 1
            }
            if not singles:
                raise SourceError(
                    f"rating {label!r} is not a single token for the tokenizer of {c.model!r}; "
                    "use another scale or model"
                )
            ids.append(sorted(singles))
        return model, tok, ids, template(tok, c)

    def input_ids(self, samples: list[Sample]) -> list[list[int]]:
        """The judge's input per sample, ending where the rating token is read: the template's
        ids around the question's and the answer's, each tokenised alone without specials."""
        _, tok, _, tpl = self._lm
        pairs = [sample_texts(s) for s in samples]
        enc = data_ids(tok, [t for pair in pairs for t in pair])
        return [tpl.join(enc[2 * i], enc[2 * i + 1]) for i in range(len(samples))]

    def render(self, sample: Sample) -> str:
        """The judge's input as text, for reading (the model gets :meth:`input_ids`; with
        ``segments: min`` it reads each of :func:`sentences` alone in this template)."""
        return self._lm[3].render(*sample_texts(sample))

    def _limit(self, model: Any) -> int:
        ctx = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        limits = [x for x in (self.config.max_length, ctx) if x]
        return min(limits) if limits else 2048

    def score(self, samples: list[Sample]) -> Scores:
        if not samples:  # the tokenizer cannot encode an empty list
            return []
        if self.config.segments == "whole":
            rated = self._rate(samples)
        else:
            # the judge reads the question and the answer only: equal sentences are rated once
            parts = [
                [Sample(prompt=s.prompt, completion=t) for t in sentences(s.completion)]
                for s in samples
            ]
            unique = list(dict.fromkeys(p for ps in parts for p in ps))
            got = dict(zip(unique, self._rate(unique)))
            rated = [weakest([got[p] for p in ps]) for ps in parts]
        return scores_of(rated)

    def _rate(self, samples: list[Sample]) -> list[Rating]:
        """Each sample's (expected rating, std) as the judge rates its whole completion."""
        torch = require("torch", "models", "llm-judge")
        model, tok, rating_ids, _ = self._lm
        labels, values = scale_of(self.config)
        limit = self._limit(model)
        ids = self.input_ids(samples)
        rows: list[Rating | None] = [None] * len(samples)
        todo: list[int] = []
        for i, s in enumerate(samples):
            if len(ids[i]) <= limit:
                todo.append(i)
                continue
            bare = Sample(prompt=s.prompt, completion="")
            if len(self.input_ids([bare])[0]) > limit:
                rows[i] = Abstain(f"the rubric and prompt alone exceed the judge's {limit} tokens")
            else:
                rows[i] = Fail(f"answer too long for the judge's context ({limit} tokens)")
        device = next(model.parameters()).device
        c = self.config
        with torch.inference_mode():
            for bucket in length_buckets(
                [len(ids[i]) for i in todo], c.batch_size, c.max_tokens_per_batch
            ):
                check_deadline()
                idx = [todo[b] for b in bucket]
                input_ids, mask = pad_batch([ids[i] for i in idx], tok.pad_token_id)
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device)
                ).logits
                last = mask.sum(dim=1) - 1  # right padding: the last real token's position
                probs = torch.softmax(
                    logits[torch.arange(len(idx)), last.to(device)].float(), dim=-1
                )
                for row, i in enumerate(idx):
                    p = [float(probs[row, t].sum()) for t in rating_ids]
                    if sum(p) < max(c.min_mass, 1e-12):
                        rows[i] = Fail(
                            f"the judge gave no rating ({sum(p):.3f} probability on {list(labels)})"
                        )
                        continue
                    mean, sd, _ = moments(p, values)
                    rows[i] = (mean, sd)
        done = [r for r in rows if r is not None]
        if len(done) != len(rows):  # length_buckets covers every index it is given
            raise SourceError("the judge left a sample unrated")
        return done

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lm", None)
        return state


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(LLMJudge)
