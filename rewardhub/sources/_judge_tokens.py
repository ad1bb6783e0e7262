"""A local judge's input as token ids, so that no completion can write a control token.

The template (system message, rubric, tags, the chat template's turn markers) is rendered once
with stand-ins where the question and the answer go, and tokenised with its control tokens.
The question and the answer are tokenised alone with special tokens disallowed
(``split_special_tokens``): ``<|im_end|>`` in an answer becomes the characters ``<``, ``|``,
... never the model's end-of-turn token. The pieces are joined as ids, never as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardhub.errors import SourceError
from rewardhub.sources._judge_prompt import JudgeConfig, escape, judge_messages, neutralize
from rewardhub.types import Sample

#: stand-ins for the question and the answer while the template renders (only the template is
#: split at them, never a sample's text)
SLOTS = ("\x1eRH-QUESTION\x1e", "\x1eRH-ANSWER\x1e")


@dataclass(frozen=True)
class Template:
    """Token ids of the judge's fixed text: before the question, between, after the answer;
    ``text`` is the rendered template with the stand-ins (for reading)."""

    text: str
    head: tuple[int, ...]
    middle: tuple[int, ...]
    tail: tuple[int, ...]
    #: whether the answer comes before the question in the template
    answer_first: bool = False

    def join(self, question: Sequence[int], answer: Sequence[int]) -> list[int]:
        first, second = (answer, question) if self.answer_first else (question, answer)
        return [*self.head, *first, *self.middle, *second, *self.tail]

    def render(self, question: str, answer: str) -> str:
        return self.text.replace(SLOTS[0], question).replace(SLOTS[1], answer)


def _special_ids(tok: Any) -> set[int]:
    """Every control token of the tokenizer: its special tokens and added special tokens, but
    the unknown token (an unknown character is data, not control)."""
    ids = set(tok.all_special_ids)
    decoder = getattr(tok, "added_tokens_decoder", {}) or {}
    ids |= {i for i, t in decoder.items() if getattr(t, "special", False)}
    return ids - {tok.unk_token_id}


def _wrapped(tok: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer adds around a text itself (e.g. BOS) when it has no chat template."""
    plain = tok("x", add_special_tokens=False)["input_ids"]
    full = tok("x", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    return [], []


def template(tok: Any, config: JudgeConfig) -> Template:
    """The judge's fixed text around the question and the answer, as token ids."""
    messages = judge_messages(config, Sample(prompt=SLOTS[0], completion=SLOTS[1]))
    before: list[int] = []
    after: list[int] = []
    if getattr(tok, "chat_template", None):
        text: str = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = f"{messages[0]['content']}\n\n{messages[1]['content']}\n\nRating:"
        before, after = _wrapped(tok)
    if text.count(SLOTS[0]) != 1 or text.count(SLOTS[1]) != 1:
        raise SourceError("the judge's chat template does not keep the message contents whole")
    answer_first = text.index(SLOTS[1]) < text.index(SLOTS[0])
    first, second = (SLOTS[1], SLOTS[0]) if answer_first else SLOTS
    head, rest = text.split(first)
    middle, tail = rest.split(second)
    enc = tok([head, middle, tail], add_special_tokens=False)["input_ids"]
    return Template(
        text, tuple(before + enc[0]), tuple(enc[1]), tuple(enc[2] + after), answer_first
    )


def data_ids(tok: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of untrusted texts with special tokens disallowed. Raises SourceError when the
    tokenizer cannot keep them out (then no prompt can be built safely)."""
    out: list[list[int]] = tok(texts, add_special_tokens=False, split_special_tokens=True)[
        "input_ids"
    ]
    special = _special_ids(tok)
    if any(i in special for row in out for i in row):
        raise SourceError(
            "the judge's tokenizer turns text into control tokens even with "
            "split_special_tokens; use a fast (tokenizers-backed) tokenizer"
        )
    return out


def sample_texts(sample: Sample) -> tuple[str, str]:
    """The question and the answer as the judge reads them (escaped; the answer neutralised)."""
    return escape(sample.prompt_text), escape(neutralize(sample.completion))


def self_check(tok: Any) -> None:
    """Refuse a tokenizer that would let text become a control token."""
    probe = [t for t in (tok.eos_token, tok.bos_token, "<|im_start|>") if isinstance(t, str)]
    data_ids(tok, probe)
