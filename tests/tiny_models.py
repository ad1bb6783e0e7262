"""Tiny random-weight models and offline tokenizers, saved to a temp dir (no download)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
]

WORDS = [*string.ascii_lowercase, *string.digits, *".,!?:;'\"()<>/=-_&#\\*+"]


def tokenizer(pad: bool = True, chat: bool = False) -> Any:
    """A character-level fast tokenizer built in code (vocab: specials, letters, digits)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIAL, *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Split("", behavior="isolated")]
    )
    tk.add_special_tokens(SPECIAL)
    tk.add_tokens(["yes", "no"])  # whole-word ratings for the yes-no judge scale
    kw: dict[str, Any] = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}
    if pad:
        kw["pad_token"] = "[PAD]"
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, model_max_length=64, **kw)
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def bert_classifier(
    path: Path, num_labels: int = 2, pad: bool = True, chat: bool = False, seed: int = 0
) -> Path:
    """A 1-layer BERT sequence classifier with random weights and ``num_labels`` outputs."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tok = tokenizer(pad=pad, chat=chat)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
        pad_token_id=tok.pad_token_id or 0,
    )
    BertForSequenceClassification(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def llama_causal_lm(path: Path, seed: int = 0) -> Path:
    """A 1-layer Llama causal LM with random weights and a chat-template tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = tokenizer(pad=True, chat=True)
    tok.eos_token = "<|end|>"
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def sentence_model(path: Path, seed: int = 0) -> Path:
    """A tiny sentence-transformers model (random BERT + mean pooling + normalize)."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers ≥ 6 moved the modules (the old path warns)
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers import models as modules

    bert = bert_classifier(path / "bert", num_labels=1, seed=seed)
    tr = modules.Transformer(str(bert), max_seq_length=64)
    st = SentenceTransformer(
        modules=[tr, modules.Pooling(tr.get_embedding_dimension()), modules.Normalize()]
    )
    st.save(str(path / "st"))
    return path / "st"


def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (a pool on a busy 2-core machine is far slower);
    use as a module fixture: ``_one_thread = pytest.fixture(autouse=True, scope="module")(...)``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
