"""Hard constraints on top of another aggregator: ``gate`` (penalty or veto) and ``lagrangian``
(a Safe-RLHF-style constraint whose dual variable learns from each batch).

Thresholds are in the units the sources produce (the values before normalisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardhub.aggregate._checks import check_values
from rewardhub.aggregate.base import (
    Aggregation,
    Aggregator,
    AggregatorConfig,
    Context,
    PerSample,
    build_aggregator,
)
from rewardhub.aggregate.scalarize import resolve_weights_mapping, weighted_sum
from rewardhub.errors import AggregationError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import AggregatorRegistry
from rewardhub.types import FloatArray, RewardBatch, json_number


def _values_for_rules(values: FloatArray, ctx: Context) -> FloatArray:
    raw = ctx.raw
    if raw is not None and np.shape(raw) == values.shape:
        return np.asarray(raw, dtype=np.float64)
    return values


class GateRule(BaseModel):
    """One hard constraint: ``min ≤ objective ≤ max``."""

    model_config = ConfigDict(extra="forbid")
    objective: str
    min: float | None = Field(None, description="the objective must be ≥ min")
    max: float | None = Field(None, description="the objective must be ≤ max")
    action: Literal["penalty", "veto"] = Field(
        "penalty", description="penalty: total := penalty; veto: total := veto_value, flagged"
    )
    penalty: float = Field(-1.0, description="the total of a sample failing this gate (penalty)")

    @model_validator(mode="after")
    def _has_bound(self) -> GateRule:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.objective!r} needs min and/or max")
        return self


class GateConfig(AggregatorConfig):
    base: dict[str, Any] = Field(
        default_factory=lambda: {"method": "weighted"},
        description="the aggregator whose total the gates guard ({method: ..., params})",
    )
    gates: list[GateRule] = Field(min_length=1, description="the constraints, checked in order")
    veto_value: float = Field(-1.0, description="total of a vetoed sample (also flagged vetoed)")
    on_missing: Literal["fail", "pass"] = Field(
        "fail", description="an abstained gate objective fails the gate (safe) or passes it"
    )
    weights: dict[str, float] | None = Field(
        None, description="passed to the base aggregator (source weights land here)"
    )


class Gate(Aggregator):
    """Hard constraints over a base aggregator: a failing sample's total becomes the gate's
    penalty, or ``veto_value`` with ``vetoed: true`` so a trainer or best-of-n can drop it.

    A veto wins over penalties; several failed penalty gates give the lowest penalty.
    """

    method = "gate"
    rowwise = True  # the gates read each sample alone; the base decides the rest
    Config = GateConfig
    summary = "hard constraints (objective ≥ min) → penalty or veto over a base method"

    def __init__(self, config: Any = None, objectives: Any = ()) -> None:
        super().__init__(config, objectives)
        base = dict(self.config.base)
        if self.config.weights is not None:
            base["weights"] = {**self.config.weights, **dict(base.get("weights") or {})}
        self.base = build_aggregator(base, self.objectives)
        unknown = sorted({g.objective for g in self.config.gates} - set(self.objectives))
        if self.objectives and unknown:
            raise AggregationError(
                f"gates name unknown objective(s) {unknown}; the objectives are "
                f"{list(self.objectives)}"
            )

    @property
    def takes_weights(self) -> bool:
        return self.base.takes_weights  # the context, per-call weights included, goes to base

    @property
    def uses_std(self) -> bool:
        return self.base.uses_std

    def batch_relative(self) -> str | None:
        return self.base.batch_relative()

    def check(self, values: FloatArray, ctx: Context) -> tuple[np.ndarray[Any, Any], list[int]]:
        """(n × gates) pass mask, and the index of each gate's objective."""
        v = _values_for_rules(values, ctx)
        cols = []
        for g in self.config.gates:
            if g.objective not in ctx.objectives:
                raise AggregationError(
                    f"gate objective {g.objective!r} is not among {list(ctx.objectives)}"
                )
            cols.append(ctx.objectives.index(g.objective))
        ok = np.ones((v.shape[0], len(cols)), dtype=bool)
        for j, (g, c) in enumerate(zip(self.config.gates, cols)):
            col = v[:, c]
            with np.errstate(invalid="ignore"):
                passed = np.ones(col.shape[0], dtype=bool)
                if g.min is not None:
                    passed &= col >= g.min
                if g.max is not None:
                    passed &= col <= g.max
            ok[:, j] = np.where(np.isnan(col), self.config.on_missing == "pass", passed)
        return ok, cols

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        inner = self.base.aggregate(v, ctx)
        ok, _ = self.check(v, ctx)
        gates = self.config.gates
        veto_cols = np.array([g.action == "veto" for g in gates])
        penalties = np.array([g.penalty if g.action == "penalty" else np.inf for g in gates])
        vetoed: np.ndarray[Any, np.dtype[np.bool_]] = np.any(~ok[:, veto_cols], axis=1)
        failed_pen = ~ok & ~veto_cols
        pen = np.where(failed_pen, penalties, np.inf).min(axis=1)
        total = np.asarray(inner.total, dtype=np.float64).copy()
        total = np.where(failed_pen.any(axis=1), pen, total)
        total = np.where(vetoed, self.config.veto_value, total)
        inner_per = inner.diagnostics.get("per_sample")

        def explain(i: int) -> dict[str, Any]:
            failed = [g.objective for g, passed in zip(gates, ok[i]) if not passed]
            rec: dict[str, Any] = {
                "failed_gate": failed[0] if failed else None,
                "failed_gates": failed,
                "vetoed": bool(vetoed[i]),
                "base_total": json_number(float(inner.total[i])),
            }
            if inner_per is not None:
                rec["base"] = inner_per[i]
                if "binding" in inner_per[i]:
                    rec["binding"] = inner_per[i]["binding"]
            return rec

        return Aggregation(
            total,
            {
                "method": self.method,
                "base_method": self.base.method,
                "vetoed": vetoed,
                "gate_failures": {g.objective: int((~ok[:, j]).sum()) for j, g in enumerate(gates)},
                "per_sample": PerSample(len(total), explain),
            },
        )

    def update(self, batch: RewardBatch, ctx: Context) -> None:
        self.base.update(batch, ctx)

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.base.load_state_dict(state.get("base", {}))


class Constraint(BaseModel):
    """``objective ≥ threshold`` on average over a batch."""

    model_config = ConfigDict(extra="forbid")
    objective: str
    threshold: float = 0.0


class LagrangianConfig(AggregatorConfig):
    constraints: list[Constraint] = Field(min_length=1, description="objective ≥ threshold")
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="weights of the reward objectives (all but the constrained ones; default 1)",
    )
    lambda_init: float = Field(1.0, ge=0, description="initial dual variable λ per constraint")
    lr: float = Field(0.05, gt=0, description="dual step size")
    lambda_max: float | None = Field(None, gt=0, description="cap on λ (none: uncapped)")
    normalize: bool = Field(True, description="divide by 1 + Σλ as Safe-RLHF does")
    on_missing: Literal["unscorable", "worst"] = Field(
        "unscorable",
        description="a sample whose constrained objective abstained fails closed: unscorable "
        "(total NaN, trainers drop it) or worst (the lowest total of the batch); it never "
        "counts as satisfied",
    )


class Lagrangian(Aggregator):
    """Safe-RLHF's Lagrangian reward (Dai et al. 2024):

    total = (Σ_i w_i r_i + Σ_j λ_j (c_j − b_j)) / (1 + Σ_j λ_j)

    over the reward objectives r and constrained objectives c_j ≥ b_j. A sample whose c_j
    abstained fails closed (``on_missing``: NaN total, or the batch's lowest). :meth:`update`
    takes a projected dual-ascent step λ_j ← clip(λ_j + lr·(b_j − mean c_j), 0, λ_max), so λ grows while
    the constraint is violated on average and shrinks once it holds.
    """

    method = "lagrangian"
    rowwise = True
    Config = LagrangianConfig
    summary = "(R + Σ λ_j (c_j − b_j)) / (1 + Σ λ_j), λ learnt by dual ascent (Safe-RLHF)"

    def batch_relative(self) -> str | None:
        if self.config.on_missing == "worst":
            return "with on_missing 'worst' (uses the lowest total of the batch)"
        return None

    def __init__(self, config: Any = None, objectives: Any = ()) -> None:
        super().__init__(config, objectives)
        names = [c.objective for c in self.config.constraints]
        unknown = sorted(set(names) - set(self.objectives))
        if self.objectives and unknown:
            raise AggregationError(
                f"constraints name unknown objective(s) {unknown}; the objectives are "
                f"{list(self.objectives)}"
            )
        self.lam = np.full(len(names), float(self.config.lambda_init))

    def _split(
        self, objectives: tuple[str, ...], call_weights: Mapping[str, float] | None = None
    ) -> tuple[list[int], list[int], FloatArray]:
        cons = []
        for c in self.config.constraints:
            if c.objective not in objectives:
                raise AggregationError(
                    f"constraint objective {c.objective!r} is not among {list(objectives)}"
                )
            cons.append(objectives.index(c.objective))
        reward = [i for i in range(len(objectives)) if i not in cons]
        unknown = sorted(set(self.config.weights) - set(objectives))
        if unknown:
            raise AggregationError(
                f"weights name unknown objective(s) {unknown}; the objectives are {list(objectives)}"
            )
        weights = {**self.config.weights, **resolve_weights_mapping(call_weights or {}, objectives)}
        w = np.array([float(weights.get(objectives[i], 1.0)) for i in reward])
        return reward, cons, w

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        v = check_values(values)
        reward, cons, w = self._split(ctx.objectives, ctx.weights)
        rules = _values_for_rules(v, ctx)
        b = np.array([c.threshold for c in self.config.constraints])
        r = weighted_sum(v[:, reward], w) if reward else np.zeros(v.shape[0])
        slack = rules[:, cons] - b  # NaN where a constrained objective abstained
        missing = np.isnan(slack).any(axis=1)
        total = r + np.where(np.isnan(slack), 0.0, slack) @ self.lam
        if self.config.normalize:
            total = total / (1.0 + self.lam.sum())
        if missing.any():  # fail closed: an unknown constraint is never a satisfied one
            scored = total[~missing & ~np.isnan(total)]
            worst = (
                float(scored.min()) if self.config.on_missing == "worst" and scored.size else np.nan
            )
            total = np.where(missing, worst, total)
        names = ctx.objectives
        lam = self.lam.copy()

        def explain(i: int) -> dict[str, Any]:
            s = slack[i]
            violated = [names[c] for c, x in zip(cons, s) if not x >= 0]  # NaN: abstained
            return {
                "reward": json_number(float(r[i])),
                "slack": {names[c]: json_number(float(x)) for c, x in zip(cons, s)},
                "lambda": {names[c]: float(x) for c, x in zip(cons, lam)},
                "binding": violated[0] if violated else None,
            }

        return Aggregation(
            total,
            {
                "method": self.method,
                "lambda": {names[c]: float(x) for c, x in zip(cons, lam)},
                "per_sample": PerSample(len(total), explain),
            },
        )

    def update(self, batch: RewardBatch, ctx: Context) -> None:
        """One dual-ascent step from the batch's mean of each constrained objective."""
        _, cons, _ = self._split(batch.objectives)
        for j, c in enumerate(cons):
            col = batch.values[:, c]
            col = col[~np.isnan(col)]
            if col.size == 0:
                continue
            threshold = self.config.constraints[j].threshold
            self.lam[j] = max(0.0, self.lam[j] + self.config.lr * (threshold - float(col.mean())))
            if self.config.lambda_max is not None:
                self.lam[j] = min(self.lam[j], self.config.lambda_max)

    def state_dict(self) -> dict[str, Any]:
        return {"lambda": self.lam.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "lambda" not in state:
            return
        lam = np.asarray(state["lambda"], dtype=np.float64).reshape(-1)
        if lam.shape != self.lam.shape or (lam < 0).any() or not np.isfinite(lam).all():
            raise AggregationError(
                f"lagrangian state has λ {lam.tolist()}; expected {self.lam.shape[0]} finite "
                "values ≥ 0 (one per constraint)"
            )
        self.lam = lam


@hookimpl
def register_aggregators(registry: AggregatorRegistry) -> None:
    registry.add(Gate)
    registry.add(Lagrangian)
