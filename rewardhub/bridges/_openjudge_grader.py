"""The OpenJudge grader behind :func:`rewardhub.bridges.openjudge.pipeline_grader` (this module
imports py-openjudge; the public module imports it only when asked)."""

from __future__ import annotations

from typing import Any

from openjudge.graders.base_grader import BaseGrader
from openjudge.graders.schema import GraderError, GraderMode, GraderScore

from rewardhub.bridges._common import PipelineBridge
from rewardhub.bridges._openjudge_args import to_sample


class PipelineGrader(BaseGrader):  # type: ignore[misc]
    """A rewardhub pipeline as a pointwise OpenJudge grader (see ``pipeline_grader``)."""

    def __init__(self, bridge: PipelineBridge, name: str = "rewardhub") -> None:
        super().__init__(
            name=name,
            mode=GraderMode.POINTWISE,
            description="rewardhub pipeline over " + ", ".join(bridge.objectives),
        )
        self._bridge = bridge

    def __deepcopy__(self, memo: dict[int, Any]) -> PipelineGrader:
        # GradingRunner copies a grader per evaluation; the pipeline (caches, pools) is shared
        return self

    async def _aevaluate(self, **kwargs: Any) -> GraderScore | GraderError:
        result = (await self._bridge.ascore([to_sample(**kwargs)]))[0]
        if result.total is None:
            return GraderError(
                name=self.name,
                error=f"rewardhub could not score this sample: {result.unscorable}",
                reason="unscorable",
                metadata=result.details(),
            )
        return GraderScore(
            name=self.name,
            score=result.total,
            reason="; ".join(f"{k}: {v}" for k, v in result.values.items()),
            metadata=result.details(),
        )
