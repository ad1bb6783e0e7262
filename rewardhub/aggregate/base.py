"""Base classes for registered aggregators and normalisers, and the context they get."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, overload

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewardhub.building import current
from rewardhub.errors import AggregationError
from rewardhub.types import FloatArray, RewardBatch, Sample

IntArray = npt.NDArray[np.intp]


def build_aggregator(
    spec: Mapping[str, Any], objectives: Sequence[str], where: str = "base"
) -> Aggregator:
    """An aggregator from ``{method: name, **params}``, for aggregators that wrap another.

    The method comes from the Hub building it (see :mod:`rewardhub.building`), so plugin
    aggregators can be wrapped and disabled ones not.
    """
    registry = current(f"{where}: an aggregator that wraps another").aggregators
    params = dict(spec)
    method = str(params.pop("method", "weighted"))
    try:
        cls = registry.get(method)
    except Exception as exc:
        raise AggregationError(f"{where}: {exc}") from None
    try:
        config = cls.Config.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or method}: {e['msg']}" for e in exc.errors()
        )
        raise AggregationError(f"{where} ({method}): {problems}") from None
    return cls(config, tuple(objectives))


def group_ids(samples: Sequence[Sample]) -> IntArray:
    """Group index per sample: ``metadata["group"]`` when set, else the identical prompt."""
    index: dict[Any, int] = {}
    out = np.empty(len(samples), dtype=np.intp)
    for i, s in enumerate(samples):
        g = s.metadata.get("group")
        key = ("g", repr(g)) if g is not None else ("p", s.key[0])
        out[i] = index.setdefault(key, len(index))
    return out


def group_rows(groups: IntArray) -> list[IntArray]:
    """The row indices of each group, groups in ascending id order, rows in input order."""
    order = np.argsort(groups, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(groups[order])) + 1) if order.size else []


@dataclass
class Context:
    """What an aggregator or normaliser may need besides the values."""

    objectives: tuple[str, ...]
    samples: Sequence[Sample] = ()
    weights: Mapping[str, float] | None = None
    std: FloatArray | None = None
    _groups: IntArray | None = field(default=None, repr=False)
    raw: FloatArray | None = field(default=None, repr=False)
    """The values before normalisation (source units), when known; gates and constraints use
    them so that thresholds read in the units the sources produce."""
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    """The declared range of objectives that have one (``objectives: [{name, bounds}]``, in
    pipeline units: negated with the column when lower is better); ``minmax`` maps it to
    [0, 1]."""

    @property
    def groups(self) -> IntArray:
        """Group id per sample (see :func:`group_ids`); one group when there are no samples."""
        if self._groups is None:
            if self.samples:
                self._groups = group_ids(self.samples)
            else:
                raise AggregationError(
                    "this method works per group of samples but got no samples; pass samples "
                    "(with metadata['group'] or shared prompts) or use a batch-level method"
                )
        return self._groups

    @classmethod
    def for_batch(
        cls,
        batch: RewardBatch,
        samples: Sequence[Sample] = (),
        weights: Mapping[str, float] | None = None,
        groups: IntArray | None = None,
    ) -> Context:
        return cls(batch.objectives, samples, weights, batch.std, groups, batch.values)


class PerSample(Sequence[dict[str, Any]]):
    """Per-sample explanations, built when read.

    Aggregators explain every total, but a trainer rarely reads the explanations: building
    10k dicts per call would cost more than the aggregation itself.
    """

    def __init__(
        self,
        n: int,
        build: Callable[[int], dict[str, Any]],
        *,
        binding: tuple[Sequence[str], IntArray] | None = None,
        no_binding: bool = False,
    ) -> None:
        self._n = n
        self._build = build
        self._binding = binding
        self._no_binding = no_binding

    def binding_counts(self) -> dict[str, int] | None:
        """How often each objective was binding, counted without building the explanations
        when the aggregator said which it was (``binding``: the names and a column index per
        sample, -1 for none) or that it has none; None when only the explanations know."""
        if self._no_binding:
            return {}
        if self._binding is None:
            return None
        names, idx = self._binding
        counts = np.bincount(idx[idx >= 0], minlength=len(names))
        return {names[j]: int(c) for j, c in enumerate(counts.tolist()) if c}

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._build(j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._build(i % self._n)

    def __repr__(self) -> str:
        return f"PerSample(n={self._n})"


@dataclass
class Aggregation:
    """An aggregator's output: the total per sample and its explanation.

    ``diagnostics["per_sample"]`` is a list with one JSON-ready dict per sample saying why the
    total is what it is (contributions, binding objective, weights, front rank, failed gate).
    """

    total: FloatArray
    diagnostics: dict[str, Any] = field(default_factory=dict)


class AggregatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopedConfig(AggregatorConfig):
    """Config of a method that compares samples with each other (Pareto, robust, ...)."""

    scope: Literal["group", "batch"] = Field(
        "group",
        description="compare the candidates of each prompt group (GRPO) or the whole batch",
    )

    def groups(self, ctx: Context) -> IntArray | None:
        """Group id per sample under this scope; None means one group (the whole batch)."""
        return ctx.groups if self.scope == "group" else None


class Aggregator:
    """Turns an n × k value matrix into a total per sample.

    Subclasses set ``method`` (the name specs use) and a pydantic ``Config``, and implement
    :meth:`aggregate`. NaN cells are abstentions: skip them (renormalise over the present
    objectives); a row with no value left gives a NaN total.
    """

    method: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = AggregatorConfig
    summary: ClassVar[str] = ""
    #: a sample's total depends on its own values only, never on the other samples of its
    #: batch: micro-batched consumers (verl, OpenRLHF, the server) may then split batches
    #: freely. Undeclared means batch-relative (refused there).
    rowwise: ClassVar[bool] = False

    def __init__(
        self,
        config: BaseModel | Mapping[str, Any] | None = None,
        objectives: Sequence[str] = (),
    ) -> None:
        self.config: Any = (
            config if isinstance(config, self.Config) else self.Config.model_validate(config or {})
        )
        self.objectives = tuple(objectives)

    def aggregate(self, values: FloatArray, ctx: Context) -> Aggregation:
        raise NotImplementedError

    @property
    def takes_weights(self) -> bool:
        """Whether per-call weights (``ctx.weights``) mean something to this aggregator: by
        default, when its Config has a ``weights`` field. Per-call weights given to one that
        takes none are an error, never silently ignored."""
        return "weights" in type(self.config).model_fields

    @property
    def uses_std(self) -> bool:
        """Whether this aggregator reads ``ctx.std`` (the spread of each reward): then every
        normaliser before it must transform std consistently (see ``Normalizer.std_slope``)."""
        return False

    def batch_relative(self) -> str | None:
        """Why this configured aggregator compares samples within a batch, worded to follow
        its name (None: it does not). Defaults to :attr:`rowwise`; override when the config
        decides."""
        if self.rowwise:
            return None
        if isinstance(self.config, ScopedConfig):
            return f"(compares candidates: scope {self.config.scope})"
        return "(compares samples within a batch)"

    def check_call_weights(self, weights: Mapping[str, float] | None) -> None:
        """Raise if per-call ``weights`` are given to an aggregator that takes none."""
        if weights and not self.takes_weights:
            raise AggregationError(
                f"aggregator {self.method!r} takes no weights, but per-call weights "
                f"{dict(weights)} were given; drop them or use a weighted method "
                "(weighted, tchebycheff, uwo, ...)"
            )

    def update(self, batch: RewardBatch, ctx: Context) -> None:
        """Update internal state after a batch (dual variables, running statistics)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class NormalizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per: Literal["batch", "group"] = "batch"


class Normalizer:
    """Rescales each objective column. ``per: group`` applies it within each sample group.

    Subclasses implement :meth:`transform` on one block of rows; NaN stays NaN.
    """

    method: ClassVar[str] = ""
    Config: ClassVar[type[NormalizerConfig]] = NormalizerConfig
    summary: ClassVar[str] = ""
    #: each row is normalised on its own (or from state kept across calls), never from the
    #: other rows of its batch. Undeclared means batch-relative.
    rowwise: ClassVar[bool] = False

    def __init__(self, config: BaseModel | Mapping[str, Any] | None = None) -> None:
        self.config: Any = (
            config if isinstance(config, self.Config) else self.Config.model_validate(config or {})
        )

    def normalize(self, values: FloatArray, ctx: Context) -> FloatArray:
        if self.config.per == "batch":
            return self.transform(values)
        out = np.empty_like(values)
        for rows in group_rows(ctx.groups):
            out[rows] = self.transform(values[rows])
        return out

    def transform(self, values: FloatArray) -> FloatArray:
        raise NotImplementedError

    #: whether :meth:`std_slope` is implemented (the map is affine per column and block)
    transforms_std: ClassVar[bool] = False

    def std_slope(self, values: FloatArray) -> FloatArray:
        """|d normalised / d value| for one block of rows (the values before this
        normaliser), broadcastable to its shape: an affine map r → a·r + b turns a std σ into
        |a|·σ. Normalisers without one (rank: not affine) leave :attr:`transforms_std` False,
        and a spec pairing them with an aggregator that reads std is rejected."""
        raise AggregationError(
            f"normalizer {self.method!r} has no consistent transform of std (it is not an "
            "affine map of the values)"
        )

    def normalize_std(self, values: FloatArray, std: FloatArray, ctx: Context) -> FloatArray:
        """The std of the normalised values, from the values before normalisation."""
        if self.config.per == "batch":
            out: FloatArray = std * self.std_slope(values)
            return out
        out = np.empty_like(std)
        for rows in group_rows(ctx.groups):
            out[rows] = std[rows] * self.std_slope(values[rows])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
