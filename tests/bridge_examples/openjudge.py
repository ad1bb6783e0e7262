"""OpenJudge rewards written as its users write them (see the package docstring)."""

from __future__ import annotations

from typing import Any

from openjudge.graders.format.length_penalty import LengthPenaltyGrader
from openjudge.graders.function_grader import FunctionGrader
from openjudge.graders.schema import GraderScore
from openjudge.graders.text.string_match import StringMatchGrader

exact = StringMatchGrader(algorithm="exact_match", case_sensitive=False, ignore_whitespace=True)
length = LengthPenaltyGrader(min_length=1, max_length=40, penalty_rate=0.01)


async def _flaky(response: str, **kwargs: Any) -> GraderScore:
    if "boom" in response:
        raise RuntimeError("grader backend down")
    return GraderScore(name="flaky", score=1.0, reason="ok")


flaky = FunctionGrader(func=_flaky, name="flaky")


def direct_runner() -> Any:
    """OpenJudge's own way to run the two graders over a dataset of dicts."""
    from openjudge.runner.grading_runner import GradingRunner

    return GradingRunner(
        {
            "exact": (exact, {"response": "response", "reference_response": "reference_response"}),
            "length": (length, {"response": "response"}),
        },
        show_progress=False,
    )
