"""The ``math-verify`` source: extract the final answer and check it with math-verify.

math-verify times out with ``signal.alarm``, which only works in a main thread, so it runs in
worker processes (:mod:`rewardhub.workers`, ``python -m rewardhub.sources._math_worker``),
never in the caller's threads. This module does not import math_verify itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.errors import MissingExtraError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores
from rewardhub.types import Sample
from rewardhub.workers import TIMEOUT, Failure, WorkerPool

WORKER_MODULE = "rewardhub.sources._math_worker"

Extractor = Literal["boxed", "answer_is", "last_number", "math_verify"]
_DEFAULT_EXTRACT: tuple[Extractor, ...] = ("boxed", "answer_is", "last_number")


class MathVerifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    extract: list[Extractor] = Field(
        default_factory=lambda: list(_DEFAULT_EXTRACT),
        min_length=1,
        description="answer extractors tried in order, the first that finds one wins: boxed "
        "(the last \\boxed{...}), answer_is ('the (final) answer is ...', 'Answer: ...'), "
        "last_number (the last number), math_verify (math-verify's own LaTeX/expression search)",
    )
    timeout_s: float = Field(
        5.0, gt=0, description="seconds per sample; a sample that takes longer abstains ('timeout')"
    )
    workers: int | None = Field(
        None, ge=1, description="worker processes (default: the number of CPUs)"
    )
    max_chars: int = Field(
        20_000, ge=100, description="only the last max_chars characters are searched for the answer"
    )
    float_rounding: int = Field(6, ge=0, description="decimal places floats are rounded to")
    strict: bool = Field(
        True, description="math-verify strict mode (variables matter; sets are not tuples)"
    )
    format: bool = Field(False, description="add the objective 'format': an answer was found")


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?\s*%?|-?\.\d+%?")
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:\n|\.(?=\s|$)|$)",
    re.I | re.S,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _last_boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (balanced braces), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    content = text[start:i].strip()
                    if content:
                        return content
                    break
    return None


def extract_answer(
    text: str, extractors: list[str], max_chars: int = 20_000
) -> tuple[str, str] | None:
    """``(extractor, answer text)`` of the first extractor that finds an answer, else None.

    ``math_verify`` is answered with the whole (tail of the) text: the worker lets
    math-verify search it.
    """
    text = text[-max_chars:]
    for how in extractors:
        if how == "boxed":
            found = _last_boxed(text)
        elif how == "answer_is":
            matches = _ANSWER_IS.findall(text)
            found = matches[-1].strip().strip("$").strip() if matches else None
        elif how == "last_number":
            nums = _NUMBER.findall(text)
            found = nums[-1].strip() if nums else None
        else:
            found = text if text.strip() else None
        if found:
            return how, found
    return None


def gold_text(reference: Any) -> str | None:
    """The reference as text for math-verify, or None when it is not usable."""
    if isinstance(reference, bool):
        return None
    if isinstance(reference, (int, float)):
        return repr(reference)
    if isinstance(reference, str) and reference.strip():
        return reference.strip()
    return None


class MathVerify(RewardSource):
    """Final-answer correctness checked with math-verify (symbolic and numeric equivalence)."""

    type = "math-verify"
    Config = MathVerifyConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        if importlib.util.find_spec("math_verify") is None:
            raise MissingExtraError("math_verify", "verify", "the math-verify source")
        self._pool: WorkerPool | None = None

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return ("correct", "format") if config.format else ("correct",)

    def score(self, samples: list[Sample]) -> Scores:
        c = self.config
        rows: list[Row] = [None] * len(samples)
        todo: list[int] = []
        requests: list[dict[str, Any]] = []
        for i, s in enumerate(samples):
            gold = gold_text(s.reference)
            if s.reference is None:
                rows[i] = Abstain("no reference: math-verify needs the answer in Sample.reference")
                continue
            if gold is None:
                rows[i] = Abstain(
                    f"malformed reference: expected an answer as text or a number, got "
                    f"{type(s.reference).__name__}"
                )
                continue
            todo.append(i)
            requests.append({
                "completion": s.completion[-c.max_chars :],
                "gold": gold,
                "extract": list(c.extract),
                "timeout_s": c.timeout_s,
                "float_rounding": c.float_rounding,
                "strict": c.strict,
            })  # fmt: skip
        if requests:
            # the worker enforces timeout_s itself; the extra second covers a worker stuck in C
            answers = self._workers().map(requests, c.timeout_s + 1.0)
            for i, ans in zip(todo, answers):
                rows[i] = self._row(ans)
        return rows

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None  # each process starts its own workers
        return state

    # -- internals ---------------------------------------------------------------------------

    def _workers(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(WORKER_MODULE, self.config.workers or os.cpu_count() or 1)
        return self._pool

    def _row(self, ans: dict[str, Any] | Failure) -> Row:
        """The outcome of one answer. The completion is to blame for a verification that runs
        out of time (``\\boxed{9^{9^{9^{9^9}}}}``: the worker's own limit, or the hard kill
        when sympy is stuck in C) or crashes on it: a failed check, never more than a wrong
        answer. The machinery is to blame for a dead worker, a request never started, or a
        reference that does not parse: could not score."""
        if isinstance(ans, Failure):
            return Fail("timeout") if ans.reason == TIMEOUT else Abstain(ans.reason)
        if ans.get("timeout"):
            return Fail("timeout")
        if ans.get("gold_error"):
            return Abstain(f"malformed reference: {ans['gold_error']}")
        if ans.get("error"):
            return Fail(f"error: {ans['error']}")
        row = [1.0 if ans.get("correct") else 0.0]
        if self.config.format:
            row.append(1.0 if ans.get("found") else 0.0)
        return row


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(MathVerify)
