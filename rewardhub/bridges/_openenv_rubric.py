"""The OpenEnv Rubric classes behind :func:`rewardhub.bridges.openenv.pipeline_rubric` (this
module imports openenv-core; the public module imports it only when asked)."""

from __future__ import annotations

from typing import Any

from openenv.core.rubrics import Rubric, RubricDict

from rewardhub.bridges._common import PipelineBridge, Scored
from rewardhub.bridges._openenv_args import to_sample


class ObjectiveRubric(Rubric):  # type: ignore[misc]
    """One pipeline objective as a named sub-rubric: its ``last_score`` is the objective's
    value on the parent's last call (None when the cell had none)."""

    def __init__(self, objective: str) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, action: Any, observation: Any) -> float | None:
        # scored by the parent in one pipeline call; called alone it repeats the last value
        score: float | None = self.last_score
        return score


class PipelineRubric(Rubric):  # type: ignore[misc]
    """A rewardhub pipeline as an OpenEnv rubric (see ``pipeline_rubric``)."""

    def __init__(
        self, bridge: PipelineBridge, *, action_field: str, unscorable: float | None
    ) -> None:
        super().__init__()
        self._bridge = bridge
        self._action_field = action_field
        self._unscorable = unscorable
        self.objectives = RubricDict({name: ObjectiveRubric(name) for name in bridge.objectives})
        #: the last call's per-objective outcomes and reasons (see ``Scored.details``)
        self.last_details: dict[str, Any] = {}

    def forward(self, action: Any, observation: Any) -> float | None:
        result = self._bridge.score([to_sample(action, observation, self._action_field)])[0]
        return self._publish(result)

    def _publish(self, result: Scored) -> float | None:
        for name, value in result.values.items():
            self.objectives[name].last_score = value
        self.last_details = result.details()
        return result.total if result.total is not None else self._unscorable

    def reset(self) -> None:
        for child in self.objectives.values():
            child.last_score = None
        self.last_details = {}
