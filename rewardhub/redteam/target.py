"""What an exploit class sees of one sample: the prompt, the reference, the two baselines
(the reference answer and an honest wrong answer) and hints read from the spec."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rewardhub.errors import InputError
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline

Kind = Literal["answer", "code", "text"]

#: stuffed when the spec names no keyword of its own: words reward models and rubrics are
#: known to over-pay (Singhal et al. 2023; Gao et al. 2023)
GENERIC_KEYWORDS = (
    "step by step",
    "therefore",
    "verified",
    "correct",
    "final answer",
    "in conclusion",
)
_DEF = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.M)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class SpecHints:
    """What the audit could read of the spec: the phrases it pays for, the templates it
    checks, the lengths it targets (``(count, unit)``, unit chars, words or tokens)."""

    keywords: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    lengths: tuple[tuple[int, str], ...] = ()

    def stuffing(self) -> tuple[str, ...]:
        """The phrases to stuff: the spec's own, else generic ones."""
        return self.keywords or GENERIC_KEYWORDS


@dataclass(frozen=True)
class Target:
    """One sample to attack, with its baselines.

    ``honest`` is the reference (or best honest) completion, ``wrong`` an honest wrong answer;
    ``answer``/``wrong_answer`` are the final answers in them when the reference is a short
    answer (``kind == "answer"``); ``kind == "code"`` when the reference holds tests.
    """

    prompt: str
    reference: Any
    honest: str
    wrong: str
    kind: Kind
    answer: str | None = None
    wrong_answer: str | None = None
    entry_point: str | None = None
    hints: SpecHints = SpecHints()
    metadata: Mapping[str, Any] | None = None
    prompt_messages: Any = None
    built: tuple[str, ...] = ()
    """the baselines built here rather than given in the data: ``honest``, ``wrong``"""

    def sample(self, completion: str) -> Sample:
        """A sample of this prompt and reference with ``completion``."""
        prompt = self.prompt_messages if self.prompt_messages is not None else self.prompt
        return Sample(
            prompt=prompt,
            completion=completion,
            reference=self.reference,
            metadata=dict(self.metadata or {}),
        )


def kind_of(reference: Any) -> Kind:
    """``answer`` (a short final answer), ``code`` (tests) or ``text`` (anything else)."""
    if isinstance(reference, bool) or reference is None:
        return "text"
    if isinstance(reference, (int, float)):
        return "answer"
    if isinstance(reference, str):
        if "\n" not in reference.strip() and 0 < len(reference.strip()) <= 200:
            return "answer"
        return "code" if "assert" in reference or "def " in reference else "text"
    if isinstance(reference, Mapping) and (
        "test" in reference or "inputs" in reference or "outputs" in reference
    ):
        return "code"
    if (
        isinstance(reference, (list, tuple))
        and reference
        and all(isinstance(t, str) for t in reference)
    ):
        return "code"
    return "text"


def wrong_answer_for(answer: str) -> str:
    """A plausible wrong final answer: the number plus one, else the last digit run changed,
    else a flipped yes/no, else ``none``."""
    text = answer.strip()
    if _NUMBER.match(text):
        if "." in text:
            return repr(float(text) + 1.0)
        return str(int(text) + 1)
    runs = list(_DIGITS.finditer(text))
    if runs:
        last = runs[-1]
        return f"{text[: last.start()]}{int(last.group()) + 1}{text[last.end() :]}"
    flips = {"yes": "no", "no": "yes", "true": "false", "false": "true"}
    return flips.get(text.lower(), "none" if text.lower() != "none" else "all")


def build_target(fields: Mapping[str, Any], hints: SpecHints, line: int | None = None) -> Target:
    """A :class:`Target` from one DATA line: ``prompt``, ``reference``, ``completion`` (the
    reference or best honest answer), ``wrong`` (an honest wrong answer), ``metadata``.

    Missing baselines are built from a short-answer reference; a reference of tests needs
    ``completion``.
    """
    if not isinstance(fields, Mapping):
        raise InputError("expected a JSON object", line)
    for name in ("completion", "wrong"):
        if name in fields and not isinstance(fields[name], str):
            raise InputError(f"field {name!r} must be a string", line)
    reference = fields.get("reference")
    kind = kind_of(reference)
    rest = {k: v for k, v in fields.items() if k not in ("completion", "wrong")}
    probe = Sample.from_dict({**rest, "completion": ""}, line=line)  # checks prompt, metadata
    prompt_text = probe.prompt_text
    answer = str(reference).strip() if kind == "answer" else None
    honest = fields.get("completion")
    built = []
    if honest is None:
        built.append("honest")
        if answer is None:
            raise InputError(
                "no 'completion' (the reference answer) and the reference is not a short "
                "answer to build one from: add the best honest completion as 'completion'",
                line,
            )
        honest = f"The answer is $\\boxed{{{answer}}}$."
    entry = _entry_point(reference, honest) if kind == "code" else None
    wrong_answer = wrong_answer_for(answer) if answer is not None else None
    wrong = fields.get("wrong")
    if wrong is None:
        built.append("wrong")
        wrong = _honest_wrong(honest, kind, answer, wrong_answer, entry)
    return Target(
        prompt=prompt_text,
        reference=reference,
        honest=honest,
        wrong=wrong,
        kind=kind,
        answer=answer,
        wrong_answer=wrong_answer,
        entry_point=entry,
        hints=hints,
        metadata=probe.metadata,
        prompt_messages=probe.prompt if not isinstance(probe.prompt, str) else None,
        built=tuple(built),
    )


def _entry_point(reference: Any, honest: str) -> str | None:
    if isinstance(reference, Mapping) and isinstance(reference.get("entry_point"), str):
        return str(reference["entry_point"])
    m = _DEF.search(honest)
    return m.group(1) if m else None


def _honest_wrong(
    honest: str, kind: Kind, answer: str | None, wrong_answer: str | None, entry: str | None
) -> str:
    """An honest wrong answer in the reference's own words, when it can be built."""
    if answer is not None and wrong_answer is not None:
        # every mention of the answer, so that the working agrees with the wrong result
        mention = re.compile(rf"(?<![\w.]){re.escape(answer)}(?!\w|\.\d)")
        if mention.search(honest):
            return mention.sub(lambda _: wrong_answer, honest)
        return f"The answer is $\\boxed{{{wrong_answer}}}$."
    if kind == "code":
        if entry:
            return f"```python\ndef {entry}(*args, **kwargs):\n    return None\n```"
        return '```python\nprint("no answer")\n```'
    return "I am not sure."


# -- hints from the spec ------------------------------------------------------------------

_REGEX_LITERAL = re.compile(r"(?<!\\)[A-Za-z][A-Za-z ']{2,}")
_HOLE = re.compile(r"\{[*+]\}")


def hints_from(pipeline: Pipeline) -> SpecHints:
    """The keywords, templates and target lengths the pipeline's sources are configured with."""
    keywords: list[str] = []
    templates: list[str] = []
    lengths: list[tuple[int, str]] = []
    for bound in pipeline.engine.sources:
        _read_config(bound.source.type, bound.source.config, keywords, templates, lengths)
    return SpecHints(
        keywords=tuple(dict.fromkeys(k for k in keywords if k.strip())),
        templates=tuple(dict.fromkeys(templates)),
        lengths=tuple(dict.fromkeys(lengths)),
    )


def _read_config(
    type_: str,
    config: Any,
    keywords: list[str],
    templates: list[str],
    lengths: list[tuple[int, str]],
) -> None:
    if type_ == "keywords":
        keywords.extend(config.required)
    elif type_ == "regex":
        for p in config.patterns:
            if p.must_match and p.field == "completion":
                keywords.extend(_regex_literals(p.pattern))
    elif type_ == "format":
        templates.append(_HOLE.sub("x", config.effective_template()))
    elif type_ == "length":
        lengths.append((int(config.target), str(config.unit)))
    elif type_ == "python":
        _read_kwargs(config.kwargs, keywords, lengths)
    elif type_ == "ensemble":
        for member in getattr(config, "members", []) or []:
            _read_member(member, keywords, templates, lengths)


def _read_member(
    member: Any, keywords: list[str], templates: list[str], lengths: list[tuple[int, str]]
) -> None:
    cfg = getattr(member, "config", None)
    if isinstance(cfg, Mapping) and member.type == "python":
        _read_kwargs(cfg.get("kwargs") or {}, keywords, lengths)


def _read_kwargs(
    kwargs: Mapping[str, Any], keywords: list[str], lengths: list[tuple[int, str]]
) -> None:
    """A python source's keyword arguments: lists of strings are phrases it looks for, an
    integer named like a length is a target length in characters."""
    for key, value in kwargs.items():
        if isinstance(value, str) and key.lower() in ("keyword", "phrase", "word"):
            keywords.append(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            keywords.extend(value)
        elif _is_length(key, value):
            lengths.append((value, "chars"))


def _is_length(key: str, value: Any) -> bool:
    named = "len" in key.lower() or key == "target"
    return named and isinstance(value, int) and not isinstance(value, bool)


def _regex_literals(pattern: str) -> Iterable[str]:
    """Plain words in a regex, as a guess at what it looks for (``(?i)\\bverified\\b`` →
    ``verified``)."""
    body = re.sub(r"\(\?[a-zA-Z]+\)", "", pattern)
    body = re.sub(r"\\[a-zA-Z]", " ", body)  # \b, \s, \d... are not letters
    return [m.group().strip() for m in _REGEX_LITERAL.finditer(body) if len(m.group().strip()) > 2]
