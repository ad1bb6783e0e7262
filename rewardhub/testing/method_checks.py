"""The conformance checks of aggregators and normalizers."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from rewardhub.aggregate.base import Aggregator, Context, Normalizer
from rewardhub.building import building_with
from rewardhub.hub import Hub
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry
from rewardhub.testing._common import UNKNOWN_FIELD, _fail, _first_diff, _resolve, _run_all, _same
from rewardhub.types import FloatArray, RewardBatch, Sample


class _MethodCheck:
    """Shared set-up of aggregator and normalizer checks: values, groups, a context."""

    kind = ""

    def __init__(self, cls: type[Any], config: Mapping[str, Any] | None, k: int) -> None:
        self.cls = cls
        self.config = dict(config or {})
        self.k = k
        self.name = f"{self.kind} {cls.method or cls.__name__!r}"
        self.objectives = tuple("abcdefghij"[:k]) if k <= 10 else tuple(f"o{j}" for j in range(k))

    def data(self, n: int, k: int | None = None, seed: int = 0) -> tuple[FloatArray, list[Sample]]:
        rng = np.random.default_rng(seed)
        values = rng.uniform(-1.0, 1.0, (n, k or self.k))
        samples = [
            Sample(prompt=f"p{i // 3}", completion=f"c{i}", metadata={"group": i // 3})
            for i in range(n)
        ]
        return values, samples

    def ctx(self, values: FloatArray, samples: Sequence[Sample]) -> Context:
        """A context with a spread (``std``) per cell, which uncertainty-aware methods need."""
        std = np.random.default_rng(7).uniform(0.05, 0.3, values.shape)
        std[np.isnan(values)] = math.nan
        # the spread travels with its row, so a permutation test moves it too
        std = std[[int(s.completion[1:]) for s in samples]] if samples else std
        batch = RewardBatch(values, self.objectives[: values.shape[1]], std)
        return Context.for_batch(batch, samples)

    def close(self) -> None:
        """Nothing to release (aggregators and normalizers are built per call)."""

    def output(self, values: FloatArray, samples: Sequence[Sample]) -> FloatArray:
        raise NotImplementedError

    def expect_shape(self, values: FloatArray) -> tuple[int, ...]:
        raise NotImplementedError

    def checked(self, values: FloatArray, samples: Sequence[Sample], what: str) -> FloatArray:
        try:
            out = np.asarray(self.output(values, samples), dtype=np.float64)
        except Exception as exc:
            raise _fail(
                self.name,
                f"raised {type(exc).__name__}: {exc} on {what} ({values.shape[0]} × "
                f"{values.shape[1]})",
                f"handle {what}: skip NaN cells, work for any n ≥ 1 and k ≥ 1",
            ) from exc
        want = self.expect_shape(values)
        if out.shape != want:
            raise _fail(
                self.name,
                f"returned shape {out.shape} on {what}, expected {want}",
                "return one value per sample (aggregators) or a matrix of the input's shape "
                "(normalizers)",
            )
        if np.isinf(out).any():
            raise _fail(self.name, f"returned inf on {what}", "return finite numbers or NaN")
        return out

    def check_config(self) -> None:
        """Unknown fields are rejected by name and the schema is exported."""
        json.dumps(self.cls.Config.model_json_schema())
        try:
            self.cls.Config.model_validate({**self.config, UNKNOWN_FIELD: 1})
        except ValidationError as exc:
            assert UNKNOWN_FIELD in str(exc)
            return
        raise _fail(
            self.name,
            f"the unknown config field {UNKNOWN_FIELD!r} was accepted silently",
            'add `model_config = ConfigDict(extra="forbid")`',
        )

    def check_shapes(self) -> None:
        """A single sample, a single objective and several groups all work."""
        for n, k, what in (
            (1, None, "a single sample"),
            (12, None, "four groups"),
            (6, 1, "one objective"),
        ):
            if k == 1 and not self.one_objective_ok():
                continue
            values, samples = self.data(n, k)
            self.checked(values, samples, what)

    def one_objective_ok(self) -> bool:
        return True

    def check_permutation(self) -> None:
        """Permuting the rows (with their samples) permutes the output the same way."""
        values, samples = self.data(12)
        base = self.checked(values, samples, "random values")
        perm = np.random.default_rng(1).permutation(len(samples))
        moved = self.checked(values[perm], [samples[i] for i in perm], "permuted rows")
        if not _same(base[perm], moved, tol=1e-7):
            raise _fail(
                self.name,
                f"permuting the rows changed the results{_first_diff(base[perm], moved)}",
                "compute each row's result from its own values (and its group), never from "
                "its position in the batch",
            )

    def checks(self) -> dict[str, Callable[[], None]]:
        return {
            n.removeprefix("check_"): getattr(self, n) for n in dir(self) if n.startswith("check_")
        }


class AggregatorCheck(_MethodCheck):
    kind = "aggregator"

    def new(self, k: int) -> Aggregator:
        return self.cls(self.config, self.objectives[:k])  # type: ignore[no-any-return]

    def output(self, values: FloatArray, samples: Sequence[Sample]) -> FloatArray:
        agg = self.new(values.shape[1]).aggregate(values, self.ctx(values, samples))
        return agg.total

    def expect_shape(self, values: FloatArray) -> tuple[int, ...]:
        return (values.shape[0],)

    def one_objective_ok(self) -> bool:
        # a config naming objectives (constraints, gates, directions) needs all of them
        return not any(o in json.dumps(self.config) for o in self.objectives[1:])

    def check_nan_rows(self) -> None:
        """An all-NaN row gets a NaN total, or fails closed (no more than any scored row);
        partial NaN rows give no inf and no exception."""
        values, samples = self.data(12)
        values[0] = math.nan
        values[1, 0] = math.nan
        values[2, -1] = math.nan
        total = self.checked(values, samples, "rows with abstentions")
        scored = total[3:][~np.isnan(total[3:])]
        if not math.isnan(total[0]) and scored.size and total[0] > scored.min():
            raise _fail(
                self.name,
                f"a row whose every objective abstained got the total {total[0]!r}, more than "
                f"a scored row ({scored.min()!r}): a policy would learn to break its scorers",
                "give a row with no value left a NaN total (unscorable), or fail it closed",
            )


class NormalizerCheck(_MethodCheck):
    kind = "normalizer"

    def output(self, values: FloatArray, samples: Sequence[Sample]) -> FloatArray:
        return self.cls(self.config).normalize(values.copy(), self.ctx(values, samples))  # type: ignore[no-any-return]

    def expect_shape(self, values: FloatArray) -> tuple[int, ...]:
        return values.shape

    def check_nan_stays_nan(self) -> None:
        """An abstained cell stays NaN, and present cells stay present."""
        values, samples = self.data(12)
        values[0] = math.nan
        values[3, 1] = math.nan
        out = self.checked(values, samples, "values with abstentions")
        if not np.array_equal(np.isnan(out), np.isnan(values)):
            raise _fail(
                self.name,
                "changed which cells are NaN (an abstention became a number, or a value NaN)",
                "transform present cells only (np.nan* functions) and keep NaN as NaN",
            )


def check_aggregator(
    cls: type[Aggregator] | str,
    config: Mapping[str, Any] | None = None,
    *,
    objectives: int = 3,
    hub: Hub | None = None,
) -> None:
    """Assert that an aggregator handles NaN rows, one objective, one sample and groups, and
    that permuting the rows permutes the totals. Objectives are named ``a``, ``b``, ``c``…"""
    hub = hub or Hub()
    with building_with(hub):  # nested types (a gate's base) come from this hub
        subject = AggregatorCheck(_resolve(AggregatorRegistry(), cls, hub), config, objectives)
        _run_all(subject.checks(), subject.close)


def check_normalizer(
    cls: type[Normalizer] | str,
    config: Mapping[str, Any] | None = None,
    *,
    objectives: int = 3,
    hub: Hub | None = None,
) -> None:
    """Assert that a normalizer keeps the shape and the NaN cells, handles one sample, one
    objective and groups, and commutes with a permutation of the rows."""
    subject = NormalizerCheck(_resolve(NormalizerRegistry(), cls, hub), config, objectives)
    _run_all(subject.checks(), subject.close)
