"""Preference pairs: reading them from JSONL (ours and RewardBench's format, TRL's
conversational format) and from a Hugging Face ``datasets`` split.

A pair is ``prompt``, ``chosen``, ``rejected`` (strings, or chat messages), with an optional
``subset``, optional per-objective ``label`` (``{objective: "chosen" | "rejected" | "tie"}``)
and optional ``user`` (passed to the sources as ``metadata["user"]``, for personalised heads).
RewardBench's rows (``prompt``, ``chosen``, ``rejected``, ``subset``, ``id``, ...) are already
this shape; TRL's conversational rows without a ``prompt`` carry it as the messages the two
sides share.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardhub.errors import InputError
from rewardhub.types import Sample

LABELS = ("chosen", "rejected", "tie")


@dataclass(frozen=True)
class PreferencePair:
    """One preference: ``chosen`` is preferred to ``rejected`` (overall); ``labels`` may say
    otherwise per objective."""

    prompt: str | list[dict[str, Any]]
    chosen: str
    rejected: str
    subset: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None

    def samples(self) -> tuple[Sample, Sample]:
        """The chosen and the rejected completion as samples of the same prompt."""
        meta = {"user": self.user} if self.user is not None else {}
        return (
            Sample(self.prompt, self.chosen, metadata=meta),
            Sample(self.prompt, self.rejected, metadata=meta),
        )

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], where: str = "pair") -> PreferencePair:
        """A pair from one row; errors name the field and the row (``where``)."""
        if not isinstance(row, Mapping):
            raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for name in ("chosen", "rejected"):
            if name not in row:
                raise InputError(
                    f"{where}: missing field {name!r} (each pair needs "
                    '{"prompt": ..., "chosen": ..., "rejected": ...})'
                )
        prompt: Any = row.get("prompt")
        chosen, rejected = row["chosen"], row["rejected"]
        if isinstance(chosen, list) and isinstance(rejected, list):
            prompt, chosen, rejected = _split_conversation(prompt, chosen, rejected, where)
        for name, value in (("chosen", chosen), ("rejected", rejected)):
            if not isinstance(value, str):
                raise InputError(
                    f"{where}: field {name!r} must be a string or a list of chat messages "
                    f"ending with the assistant's answer, got {type(value).__name__}"
                )
        if prompt is None:
            prompt = ""
        if not isinstance(prompt, (str, list)):
            raise InputError(
                f"{where}: field 'prompt' must be a string or a list of chat messages, got "
                f"{type(prompt).__name__}"
            )
        subset = row.get("subset") or ""
        if not isinstance(subset, str):
            raise InputError(f"{where}: field 'subset' must be a string")
        user = row.get("user")
        if user is not None and not isinstance(user, str):
            raise InputError(f"{where}: field 'user' must be a string")
        try:
            Sample(prompt, chosen)  # checks chat messages
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        return cls(prompt, chosen, rejected, subset, _labels(row.get("label"), where), user)


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(
            f"{where}: field 'label' must be an object {{objective: "
            f"{' | '.join(repr(x) for x in LABELS)}}}, got {type(value).__name__}"
        )
    out: dict[str, str] = {}
    for name, v in value.items():
        if v not in LABELS:
            raise InputError(
                f"{where}: label.{name} is {json.dumps(v)[:40]}; use one of {list(LABELS)}"
            )
        out[str(name)] = str(v)
    return out


def _split_conversation(
    prompt: Any, chosen: list[Any], rejected: list[Any], where: str
) -> tuple[Any, str, str]:
    """TRL's conversational preference rows: the last message of each side is the answer;
    without an explicit ``prompt`` the messages before it (shared by both sides) are."""

    def answer(messages: list[Any], name: str) -> str:
        last = messages[-1] if messages else None
        if not isinstance(last, Mapping) or not isinstance(last.get("content"), str):
            raise InputError(
                f"{where}: field {name!r} is a list but its last item is not a chat message "
                "{'role': 'assistant', 'content': '...'}"
            )
        return str(last["content"])

    if prompt is None:
        head_c, head_r = chosen[:-1], rejected[:-1]
        if head_c != head_r:
            raise InputError(
                f"{where}: 'chosen' and 'rejected' start with different messages and there is "
                "no 'prompt' field; give the prompt separately"
            )
        prompt = [dict(m) for m in head_c]
    return prompt, answer(chosen, "chosen"), answer(rejected, "rejected")


def read_pairs(source: str | Path, split: str | None = None) -> list[PreferencePair]:
    """Pairs from a JSONL file, a saved ``datasets`` directory, or (``hf:NAME``) a dataset
    by name from the local Hugging Face cache; ``split`` picks a split (default: ``train``
    when the dataset has several, e.g. RewardBench's ``filtered``)."""
    text = str(source)
    path = Path(text)
    if text.startswith("hf:") or path.is_dir():
        rows: Iterable[tuple[str, Mapping[str, Any]]] = (
            (f"{text}: row {i}", row) for i, row in enumerate(_dataset_rows(text, split), 1)
        )
    else:
        if split is not None:
            raise InputError(f"--split {split!r}: only for a dataset (a directory or hf:NAME)")
        from rewardhub._jsonl import read_objects

        rows = ((f"{path}: line {n}", obj) for n, obj in read_objects(path))
    pairs = [PreferencePair.from_dict(row, where) for where, row in rows]
    if not pairs:
        raise InputError(f"{text} has no preference pairs")
    return pairs


def _dataset_rows(source: str, split: str | None) -> Iterator[Mapping[str, Any]]:
    from rewardhub._optional import require

    datasets = require("datasets", "trl", "reading a Hugging Face dataset")
    from rewardhub.models import allow_download

    offline = datasets.config.HF_HUB_OFFLINE
    # nothing is downloaded at run time unless REWARDHUB_ALLOW_DOWNLOAD=1 (as for models)
    datasets.config.HF_HUB_OFFLINE = offline or not allow_download()
    try:
        if source.startswith("hf:"):
            data = datasets.load_dataset(source[3:], split=split or None)
        else:
            data = datasets.load_from_disk(source)
    except (OSError, ValueError, ConnectionError) as exc:
        raise InputError(
            f"cannot load the dataset {source!r}: {exc} (hf:NAME reads the local Hugging Face "
            "cache; REWARDHUB_ALLOW_DOWNLOAD=1 lets it download)"
        ) from None
    finally:
        datasets.config.HF_HUB_OFFLINE = offline
    if isinstance(data, datasets.DatasetDict):
        names = list(data)
        name = split or ("train" if "train" in names else names[0] if len(names) == 1 else None)
        if name is None or name not in data:
            raise InputError(f"{source}: choose a split with --split; it has {names}")
        data = data[name]
    elif split is not None and not source.startswith("hf:"):
        raise InputError(f"--split {split!r}: {source} holds a single split")
    yield from data
