"""``ensemble``: several sources with the same objectives → their mean, with the std across them.

With ``keep_members: true`` each member's values are also output as ``<objective>_<member>``
columns, so ``wco`` / ``uwo`` / ``lcb`` with ``members: {objective: [columns...]}`` work on it
(Coste et al. 2023). A member that abstains on a sample is left out of that sample's mean; a
member's failed check counts at its failing value.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rewardhub.building import current
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.rows import to_rows
from rewardhub.source import Abstain, AbstainNow, FailNow, RewardSource, Scores, ScoresWithStd
from rewardhub.spec import validate_config
from rewardhub.types import Sample


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, description="member name in its columns (default m0, m1, ...)")
    type: str = Field(description="any registered source type")
    config: dict[str, Any] = Field(default_factory=dict)


class EnsembleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[Member] = Field(description="two or more sources with the same objectives")
    keep_members: bool = Field(False, description="also output each member's columns")

    @field_validator("members")
    @classmethod
    def _two(cls, v: list[Member]) -> list[Member]:
        if len(v) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(v)}")
        names = [m.id or f"m{i}" for i, m in enumerate(v)]
        if len(set(names)) != len(names):
            raise ValueError(f"member ids must be unique, got {names}")
        return v


def member_names(config: EnsembleConfig) -> list[str]:
    return [m.id or f"m{i}" for i, m in enumerate(config.members)]


class Ensemble(RewardSource):
    """Mean of member sources with the same objectives, std across them as the uncertainty."""

    type = "ensemble"
    Config = EnsembleConfig
    summary = "mean and std over member sources (reward-model ensembles)"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        registry = current("the ensemble source").sources  # the pipeline's Hub
        self.members: list[RewardSource] = []
        for i, m in enumerate(self.config.members):
            cls = registry.get(m.type, f"members[{i}].type")
            conf = validate_config(cls.Config, m.config, f"members[{i}].config")
            self.members.append(cls(conf))
        objs = [tuple(m.output_objectives) for m in self.members]
        for i, o in enumerate(objs[1:], start=1):
            if o != objs[0]:
                raise SourceError(
                    f"ensemble members must produce the same objectives: members[0] gives "
                    f"{list(objs[0])}, members[{i}] gives {list(o)}"
                )
        self._base = objs[0]
        # float rounding the members allow (model members differ by ~1e-8 across batches)
        self.tolerance = max(float(getattr(m, "tolerance", 0.0)) for m in self.members)

    def cache_files(self) -> Sequence[Path]:
        """Every file a member reads: editing one re-keys the ensemble's results too."""
        return tuple(f for m in self.members for f in m.cache_files())

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        # the members' objectives need their configs: read them from a built instance
        return cls(config)._outputs()

    @property
    def output_objectives(self) -> tuple[str, ...]:
        return self._outputs()

    def _outputs(self) -> tuple[str, ...]:
        extra = (
            tuple(f"{o}_{n}" for n in member_names(self.config) for o in self._base)
            if self.config.keep_members
            else ()
        )
        return (*self._base, *extra)

    def fail_values(self) -> tuple[float, ...]:
        per = [m.fail_values() for m in self.members]
        worst = tuple(min(col) for col in zip(*per))
        extra = tuple(v for p in per for v in p) if self.config.keep_members else ()
        return (*worst, *extra)

    async def _run(self, m: RewardSource, samples: list[Sample]) -> tuple[Any, list[str | None]]:
        n, k = len(samples), len(self._base)
        try:
            out = await (m.ascore(samples) if m.is_async() else asyncio.to_thread(m.score, samples))
            rows = to_rows(out, n, k, m.fail_values())
            values, reasons = rows.values, rows.reasons
        except AbstainNow as exc:
            return np.full((n, k), math.nan), [exc.reason] * n
        except FailNow as exc:
            return np.tile(np.asarray(m.fail_values(), dtype=np.float64), (n, 1)), [exc.reason] * n
        except Exception as exc:  # a broken member is machinery: it abstains, the rest go on
            return np.full((n, k), math.nan), [f"{type(exc).__name__}: {exc}"] * n
        return values, reasons

    async def ascore(self, samples: list[Sample]) -> Scores:
        runs = await asyncio.gather(*(self._run(m, samples) for m in self.members))
        stack = np.stack([v for v, _ in runs])  # members × n × k
        present = ~np.isnan(stack)
        count = present.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(present, stack, 0.0).sum(axis=0) / count
            var = (np.where(present, stack - mean, 0.0) ** 2).sum(axis=0) / count
        std = np.sqrt(var)
        names = member_names(self.config)
        rows: list[Any] = []
        for i in range(len(samples)):
            if not count[i].any():
                why = "; ".join(f"{nm}: {r[i] or 'abstained'}" for nm, (_, r) in zip(names, runs))
                rows.append(Abstain(f"every member abstained ({why})"))
            else:
                cells = mean[i].tolist()
                if self.config.keep_members:
                    cells += stack[:, i, :].reshape(-1).tolist()
                rows.append(cells)
        width = len(self._outputs())
        full_std = np.full((len(samples), width), math.nan)
        full_std[:, : len(self._base)] = std
        return ScoresWithStd(rows, full_std)

    def score(self, samples: list[Sample]) -> Scores:
        return asyncio.run(self.ascore(samples))

    def close(self) -> None:
        for m in self.members:
            m.close()


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Ensemble)
