"""The ``math-verify`` source: the final answer checked with math-verify, with the library's
own semantics by default (``math_verify.parse`` finds the answer, ``verify`` compares), but
for one stricter rule, ``require_evaluated`` (:mod:`rewardhub.sources._math_evaluated`): an
answer that only restates arithmetic (``52 + 30``) does not count for a number reference.

math-verify times out with ``signal.alarm``, which only works in a main thread, so it runs in
worker processes (:mod:`rewardhub.workers`, ``python -m rewardhub.sources._math_worker``),
never in the caller's threads. This module does not import math_verify itself.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.errors import MissingExtraError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores
from rewardhub.sources._math_text import answer_region, extract_answer, gold_text
from rewardhub.types import Sample
from rewardhub.workers import TIMEOUT, Failure, WorkerPool

WORKER_MODULE = "rewardhub.sources._math_worker"
__all__ = ["MathVerify", "MathVerifyConfig", "extract_answer", "gold_text"]

Extractor = Literal["math_verify", "boxed", "answer_is", "last_number", "whole"]
Target = Literal["latex", "expr"]
_DEFAULT_EXTRACT: tuple[Extractor, ...] = ("math_verify",)
_DEFAULT_TARGETS: tuple[Target, ...] = ("latex", "expr")


class MathVerifyConfig(BaseModel):
    """The library's options keep the library's names (``math_verify.parse``/``verify``,
    ``LatexExtractionConfig``, ``NormalizationConfig``) and its defaults."""

    model_config = ConfigDict(extra="forbid")
    extract: list[Extractor] = Field(
        default_factory=lambda: list(_DEFAULT_EXTRACT),
        min_length=1,
        description="how the answer is found, tried in order, the first that finds one wins: "
        "math_verify (the default: math_verify.parse searches the answer with its own patterns "
        "and priorities, all \\boxed{} answers included); lenient, only on request: boxed (the "
        "last \\boxed{...}), answer_is ('the (final) answer is ...', 'Answer: ...'), "
        "last_number (the last number standing as a token, GSM8K-style), whole (the completion "
        "is the bare answer, as in verl's prime_math data)",
    )
    targets: list[Target] = Field(
        default_factory=lambda: list(_DEFAULT_TARGETS),
        min_length=1,
        description="math-verify extraction targets: latex (LatexExtractionConfig), expr "
        "(ExprExtractionConfig); the reference is parsed with the same targets",
    )
    boxed_match_priority: int = Field(
        50,
        ge=-1,
        description="LatexExtractionConfig.boxed_match_priority: 0 reads \\boxed{} first, 50 "
        "after 'final answer is' patterns (the library default), -1 never",
    )
    units: bool = Field(True, description="NormalizationConfig.units: strip units from LaTeX")
    extraction_mode: Literal["any_match", "first_match"] = Field(
        "any_match",
        description="math_verify.parse extraction_mode: any_match tries every match of the "
        "best pattern group; first_match only the first",
    )
    float_rounding: int = Field(
        6, ge=0, description="verify(): decimal places floats are rounded to"
    )
    strict: bool = Field(
        True, description="verify(): strict mode (variables matter; sets are not tuples)"
    )
    allow_set_relation_comp: bool = Field(
        False,
        description="verify(): a relation in the reference (x < 3) may match a set answer "
        "((-oo, 3)); the other way round always may",
    )
    require_evaluated: bool = Field(
        True,
        description="stricter than the math-verify library: when the reference is a stated "
        "number (82, -3, 0.5, \\frac{1}{2}, 50\\%), an answer that is an unevaluated "
        "expression of numbers (52 + 30, 17 \\cdot 20, 2^{10}, \\sqrt{6724}) is refused (a "
        "failed check) even though it equals the reference: restating the question's own "
        "arithmetic is not solving it. Number notations still count (1/2, \\frac{164}{2}, "
        "3\\frac{1}{2}, 6.02 \\times 10^{23}, 10^{3}), and so do irrational closed forms "
        "(\\sqrt{17}); false = the library's semantics",
    )
    reasoning_delimiters: list[str] = Field(
        default_factory=lambda: ["</think>"],
        description="text before the last closing reasoning delimiter never counts as the "
        "answer (TRL's reasoning_accuracy_reward); a completion that opens the block (<think>) "
        "and never closes it fails the check; one without the block is read whole; [] = off",
    )
    timeout_s: float = Field(
        5.0,
        gt=0,
        description="seconds per sample; a verification that takes longer fails the check",
    )
    workers: int | None = Field(
        None, ge=1, description="worker processes (default: the number of CPUs)"
    )
    max_chars: int = Field(
        20_000, ge=100, description="only the last max_chars characters are searched for the answer"
    )
    format: bool = Field(False, description="add the objective 'format': an answer was found")

    def library_options(self) -> dict[str, Any]:
        """The options the worker hands to math-verify."""
        return self.model_dump(
            include={"extract", "targets", "boxed_match_priority", "units", "extraction_mode",
                     "float_rounding", "strict", "allow_set_relation_comp"}
        )  # fmt: skip


class MathVerify(RewardSource):
    """Final-answer correctness checked with math-verify (symbolic and numeric equivalence)."""

    type = "math-verify"
    Config = MathVerifyConfig
    version = "2"  # 2: require_evaluated

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
        options = c.library_options()
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
            answer = answer_region(s.completion, c.reasoning_delimiters)
            if answer is None:
                rows[i] = Fail("the reasoning block never closes: no answer was given")
                continue
            todo.append(i)
            requests.append({
                "completion": answer[-c.max_chars :], "gold": gold,
                "timeout_s": c.timeout_s, "require_evaluated": c.require_evaluated, **options,
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
        if ans.get("unevaluated"):
            return Fail(
                f"unevaluated: the answer {ans['unevaluated']} is an expression of numbers, not "
                "the value the reference states (require_evaluated)"
            )
        row = [1.0 if ans.get("correct") else 0.0]
        if self.config.format:
            row.append(1.0 if ans.get("found") else 0.0)
        return row


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(MathVerify)
