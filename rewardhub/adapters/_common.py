"""What the adapters share: building the pipeline, and the fill policy of per-sample trainers."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rewardhub.batching import Row
from rewardhub.errors import SpecError
from rewardhub.hub import Hub
from rewardhub.outcome import filled as filled_cell
from rewardhub.pipeline import Pipeline
from rewardhub.types import RewardBatch, Sample

#: the environment variable that names the spec file when none is passed
SPEC_ENV = "REWARDHUB_SPEC"

SpecLike = Pipeline | Mapping[str, Any] | str | Path | None
Fill = Literal["fail"] | float | Mapping[str, float]


def load_pipeline(spec: SpecLike, hub: Hub | None = None) -> Pipeline:
    """A Pipeline from a Pipeline, a spec dict, a spec file, or (None) ``$REWARDHUB_SPEC``."""
    if isinstance(spec, Pipeline):
        return spec
    if spec is None:
        spec = os.environ.get(SPEC_ENV)
        if not spec:
            raise SpecError(
                f"no spec given and ${SPEC_ENV} is not set; set {SPEC_ENV}=path/to/spec.yaml "
                "or pass the spec to the factory"
            )
    if isinstance(spec, (str, Path)):
        return Pipeline.from_yaml(spec, hub=hub)
    return Pipeline.from_spec(spec, hub=hub)


def objective_fail_values(pipeline: Pipeline) -> dict[str, float]:
    """Each objective's failing value in the pipeline's units (what a failed check scores)."""
    negated = {o.name for o in pipeline.spec.objective_specs or [] if not o.higher_is_better}
    out: dict[str, float] = {}
    for bound in pipeline.engine.sources:
        for name, value in zip(bound.objectives, bound.source.fail_values()):
            out[name] = -value if name in negated else value
    return out


class AbstainFill:
    """Turns a :class:`Row` into numbers only, for trainers that cannot take NaN (verl, OpenRLHF).

    The cell rules are :func:`rewardhub.outcome.filled`'s:

    - An unscorable cell gets its objective's fill and the flag ``abstained_<objective>`` = 1.
      ``fill="fail"`` (the default) uses the objective's failing value, so an abstention
      never earns more than failing the check; a number or ``{objective: number}`` sets it.
    - A not-applicable cell gets ``not_applicable`` (default 0.0), flag 0.
    - A failed cell is its failing value, flag 0.
    - A NaN or infinite total (an unscorable sample) becomes the aggregate of the filled row
      (the pipeline scores the abstained cells as failed checks), or ``total`` when given;
      ``abstained`` = 1. No key ever holds NaN or inf.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        fill: Fill = "fail",
        *,
        total: float | None = None,
        not_applicable: float = 0.0,
    ) -> None:
        self.pipeline = pipeline
        objectives = pipeline.objectives
        if fill == "fail":
            self.values = objective_fail_values(pipeline)
        elif isinstance(fill, Mapping):
            missing = [o for o in objectives if o not in fill]
            unknown = [o for o in fill if o not in objectives]
            if missing or unknown:
                raise SpecError(
                    f"fill must give a number for each objective {list(objectives)}; "
                    f"missing {missing}, unknown {unknown}",
                    "fill",
                )
            self.values = {o: float(fill[o]) for o in objectives}
        elif isinstance(fill, (int, float)) and not isinstance(fill, bool):
            self.values = dict.fromkeys(objectives, float(fill))
        else:
            raise SpecError(
                f"fill must be 'fail', a number or {{objective: number}}, got {fill!r}", "fill"
            )
        for name, value in [*self.values.items(), ("total", total), ("na", not_applicable)]:
            if value is not None and not math.isfinite(value):
                raise SpecError(
                    f"the fill for {name!r} must be a finite number, got {value}", "fill"
                )
        self.total = total
        self.not_applicable = float(not_applicable)

    def keys(self) -> list[str]:
        """The keys of :meth:`numbers`, always the same and in this order."""
        objs = list(self.pipeline.objectives)
        return ["score", *objs, *(f"abstained_{o}" for o in objs), "abstained"]

    def numbers(self, row: Row, sample: Sample) -> dict[str, float]:
        """``{"score": total, <objective>: value, "abstained_<objective>": 0/1, "abstained": 0/1}``."""
        out: dict[str, float] = {"score": row.total}
        flags: dict[str, float] = {}
        filled = dict(row.values)  # not-applicable cells stay NaN: the aggregate skips them
        for name, value in row.values.items():
            number, abstained = filled_cell(
                value, row.outcome(name), self.values[name], self.not_applicable
            )
            out[name] = number
            if abstained:
                filled[name] = number
            flags[f"abstained_{name}"] = float(abstained)
        unscorable = not math.isfinite(row.total)
        any_abstained = any(flags.values()) or unscorable
        if unscorable:
            out["score"] = self._total(filled, sample)
        for key, flag in flags.items():
            out[key] = flag
        out["abstained"] = float(any_abstained)
        return out

    def _total(self, filled: dict[str, float], sample: Sample) -> float:
        if self.total is not None:
            return self.total
        objs = self.pipeline.objectives
        batch = RewardBatch(np.array([[filled[o] for o in objs]], dtype=np.float64), objs)
        total = float(self.pipeline.aggregate(batch, [sample]).total[0])
        if math.isfinite(total):
            return total
        return min(self.values.values())  # nothing applied: the worst fill, never a free pass
