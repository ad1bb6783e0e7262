"""Pipeline: spec → sources → normalisers → aggregator → ScoreResult."""

from __future__ import annotations

import copy
import importlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rewardhub.aggregate.base import Aggregator, Context, Normalizer
from rewardhub.building import building_with
from rewardhub.engine import BoundSource, Engine
from rewardhub.errors import AbstainError, InputError, RewardHubError, SpecError
from rewardhub.hub import Hub
from rewardhub.sources._windows import Truncates
from rewardhub.spec import (
    FillPolicy,
    PipelineSpec,
    base_dir,
    check_weights,
    parse_spec,
    read_spec_file,
    validate_config,
)
from rewardhub.types import FloatArray, RewardBatch, Sample, ScoreResult
from rewardhub.when import Condition


class Pipeline:
    """A runnable pipeline built from a validated spec.

    ``score`` / ``ascore`` return a :class:`ScoreResult`; per-call ``weights`` override the
    spec's. Use as a context manager (or call :meth:`close`) to release worker pools.
    """

    def __init__(self, spec: PipelineSpec | Mapping[str, Any], hub: Hub | None = None) -> None:
        self.spec = parse_spec(spec)
        self.hub = hub if hub is not None else Hub()
        self._base = base_dir.get()  # relative paths in the spec resolve against it
        with building_with(self.hub):  # an ensemble's members come from this hub too
            bound = [self._bind(i) for i in range(len(self.spec.sources))]
        self.engine = Engine(
            bound,
            memory_items=self.spec.cache.memory_items,
            cache_path=self.spec.cache.path,
        )
        self.objectives = self._check_objectives()
        self._negate = np.array(
            [not o.higher_is_better for o in self.spec.objective_specs or []], dtype=bool
        )
        self._bounds = {
            o.name: (o.bounds if o.higher_is_better else (-o.bounds[1], -o.bounds[0]))
            for o in self.spec.objective_specs or []
            if o.bounds is not None
        }
        self.normalizers = self._build_normalizers()
        self._warned_batch_of_one = False
        self.aggregator = self._build_aggregator(
            self.spec.aggregate.method, self.spec.aggregate.params
        )
        self._check_std_units(self.aggregator)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, data: PipelineSpec | Mapping[str, Any], hub: Hub | None = None) -> Pipeline:
        return cls(data, hub=hub)

    @classmethod
    def from_yaml(cls, path: str | Path, hub: Hub | None = None) -> Pipeline:
        """Load a YAML (or JSON) spec; relative paths in it resolve against its folder."""
        data = read_spec_file(path)
        token = base_dir.set(Path(path).resolve().parent)
        try:
            return cls(data, hub=hub)
        finally:
            base_dir.reset(token)

    from_file = from_yaml

    def _bind(self, i: int) -> BoundSource:
        s = self.spec.sources[i]
        path = f"sources[{i}]"
        cls = self.hub.sources.get(s.type, f"{path}.type")
        config = validate_config(cls.Config, s.config, f"{path}.config")
        try:
            source = cls(config)
        except RewardHubError as exc:
            raise SpecError(str(exc), path) from None
        produced = tuple(source.output_objectives)
        unknown = sorted(set(s.rename) - set(produced))
        if unknown:
            raise SpecError(
                f"renames {unknown}, which source type {s.type!r} does not produce; "
                f"it produces {list(produced)}",
                f"{path}.rename",
            )
        return BoundSource(
            id=s.name,
            source=source,
            objectives=tuple(s.rename.get(o, o) for o in produced),
            timeout_s=s.timeout_s,
            batch_size=s.batch_size,
            concurrency=s.concurrency,
            when=Condition.parse(s.when) if s.when else None,
            cache=s.cache and self.spec.cache.memory_items + (1 if self.spec.cache.path else 0) > 0,
            disk=not source.inline or self.spec.cache.cheap_sources,
        )

    def _check_objectives(self) -> tuple[str, ...]:
        produced: dict[str, str] = {}
        for b in self.engine.sources:
            for o in b.objectives:
                if o in produced:
                    raise SpecError(
                        f"objective {o!r} is produced by both {produced[o]!r} and {b.id!r}; "
                        f"rename one (rename: {{{o}: other_name}})",
                        "sources",
                    )
                produced[o] = b.id
        declared = self.spec.objective_specs
        if declared is None:
            return tuple(produced)
        names = [o.name for o in declared]
        missing = [o for o in names if o not in produced]
        if missing:
            raise SpecError(
                f"{missing} declared but no source produces them; sources produce {list(produced)}",
                "objectives",
            )
        extra = [o for o in produced if o not in names]
        if extra:
            raise SpecError(
                f"sources produce {extra}, which are not declared; add them to objectives "
                "or rename them",
                "objectives",
            )
        return tuple(names)

    def _build_normalizers(self) -> list[Normalizer]:
        out = []
        many = isinstance(self.spec.normalize, list)
        for j, n in enumerate(self.spec.normalizers):
            path = f"normalize[{j}]" if many else "normalize"
            cls = self.hub.normalizers.get(n.method, f"{path}.method")
            out.append(cls(validate_config(cls.Config, n.params, path)))
        return out

    def _source_weights(self) -> dict[str, float]:
        weights: dict[str, float] = {}
        for i, (s, b) in enumerate(zip(self.spec.sources, self.engine.sources)):
            if isinstance(s.weight, (int, float)):
                weights.update(dict.fromkeys(b.objectives, float(s.weight)))
            elif isinstance(s.weight, dict):
                unknown = sorted(set(s.weight) - set(b.objectives))
                if unknown:
                    raise SpecError(
                        f"weights objectives {unknown} this source does not produce "
                        f"({list(b.objectives)})",
                        f"sources[{i}].weight",
                    )
                weights.update(s.weight)
        return weights

    def _build_aggregator(self, method: str, params: Mapping[str, Any]) -> Aggregator:
        cls = self.hub.aggregators.get(method, "aggregate.method")
        params = dict(params)
        source_weights = self._source_weights()
        if source_weights:
            if "weights" not in cls.Config.model_fields:
                raise SpecError(
                    f"sources set a weight, but aggregator {method!r} takes no weights; "
                    "remove the weights or use a weighted method",
                    "aggregate.method",
                )
            given = params.get("weights") or {}
            # a malformed `weights` is left for the config validation to report
            params["weights"] = {**source_weights, **given} if isinstance(given, Mapping) else given
        if isinstance(params.get("weights"), Mapping):
            unknown = sorted(set(params["weights"]) - set(self.objectives))
            if unknown:
                raise SpecError(
                    f"names unknown objective(s) {unknown}; the objectives are {list(self.objectives)}",
                    "aggregate.weights",
                )
            try:  # all zero only shows once the objectives are known
                default = float(getattr(cls, "default_weight", 1.0))
                check_weights(params["weights"], "weights", self.objectives, default)
            except ValueError as exc:
                raise SpecError(str(exc), "aggregate.weights") from None
        config = validate_config(cls.Config, params, "aggregate")
        with building_with(self.hub):  # a gate's base comes from this hub too
            aggregator: Aggregator = cls(config, self.objectives)
        return aggregator

    def _check_std_units(self, aggregator: Aggregator) -> None:
        """An aggregator that penalises std needs it in the units of the normalised values."""
        if not aggregator.uses_std:
            return
        many = isinstance(self.spec.normalize, list)
        for j, norm in enumerate(self.normalizers):
            if not norm.transforms_std:
                raise SpecError(
                    f"normalizer {norm.method!r} has no consistent transform of std, so "
                    f"aggregator {aggregator.method!r} would penalise the normalised values "
                    "with a spread in other units; use zscore, minmax, group, running or "
                    "none, or give the aggregator `members:` columns",
                    f"normalize[{j}].method" if many else "normalize.method",
                )

    def with_aggregator(self, method: str, **params: Any) -> Pipeline:
        """The same sources (and caches) with another aggregation method."""
        other = object.__new__(Pipeline)
        other.__dict__.update(self.__dict__)
        other.aggregator = self._build_aggregator(method, params)
        self._check_std_units(other.aggregator)
        return other

    def detached(self) -> Pipeline:
        """The same sources and caches with fresh copies of the normalisers and aggregator
        (their state included): aggregating through it never changes this pipeline's running
        statistics or duals, e.g. the server's /v1/aggregate next to its /v1/score."""
        other = object.__new__(Pipeline)
        other.__dict__.update(self.__dict__)
        # deep copies, not rebuilt from the spec: a plugin's state need not be in state_dict
        other.normalizers = copy.deepcopy(self.normalizers)
        other.aggregator = copy.deepcopy(self.aggregator)
        return other

    @property
    def total_from(self) -> str:
        """What a total is computed from, in words: ``"rewards"`` (the sources' values), or
        the normalisers that rescale them first. The server's responses say it."""
        steps = [
            f"{n.method} per {getattr(n.config, 'per', 'batch')}"
            for n in self.normalizers
            if n.method != "none"
        ]
        return f"rewards normalised by {', then '.join(steps)}" if steps else "rewards"

    # -- scoring -----------------------------------------------------------------------------

    def score(
        self,
        samples: Sequence[Sample | Mapping[str, Any]],
        *,
        weights: Mapping[str, float] | None = None,
    ) -> ScoreResult:
        """Score samples (``Sample`` objects, or dicts as the server and ``score`` read them:
        ``{"prompt", "completion", "reference"?, "metadata"?}``): the vector from every
        source, normalised and aggregated."""
        items = as_samples(samples)
        return self.aggregate(self.vector(items), items, weights=weights)

    async def ascore(
        self,
        samples: Sequence[Sample | Mapping[str, Any]],
        *,
        weights: Mapping[str, float] | None = None,
    ) -> ScoreResult:
        items = as_samples(samples)
        batch = self._finish(await self.engine.ascore(items))
        return self.aggregate(batch, items, weights=weights)

    def vector(self, samples: Sequence[Sample | Mapping[str, Any]]) -> RewardBatch:
        """Only the reward vector (no normalisation or aggregation)."""
        return self._finish(self.engine.score(as_samples(samples)))

    def _finish(self, batch: RewardBatch) -> RewardBatch:
        """Engine output → pipeline objectives: declared order, lower-is-better negated."""
        batch = _reorder(batch, self.objectives)
        if self._negate.any():
            batch = batch.with_values(np.where(self._negate, -batch.values, batch.values))
        return batch

    def aggregate(
        self,
        batch: RewardBatch,
        samples: Sequence[Sample] = (),
        *,
        weights: Mapping[str, float] | None = None,
        normalize: bool = True,
    ) -> ScoreResult:
        """Normalise and aggregate a reward vector over this pipeline's objectives (e.g. one
        read back from a scored file); ``normalize=False`` aggregates the values as given.

        ``diagnostics["normalized"]`` holds the values the total was computed from, and
        ``diagnostics["batch_of_one"]`` what compared a sample only with itself (a
        :class:`~rewardhub.batch_of_one.BatchOfOneWarning` is issued once per pipeline)."""
        self.aggregator.check_call_weights(weights)
        batch = _reorder(batch, self.objectives)
        values, unscorable = self._apply_abstain_policy(batch)
        ctx = Context.for_batch(batch, samples, weights)
        ctx.bounds = self._bounds
        lonely = self._batch_of_one(samples, normalize)
        for norm in self.normalizers if normalize else ():
            before, values = values, norm.normalize(values, ctx)
            if ctx.std is not None and self.aggregator.uses_std:  # std in the new units
                ctx.std = norm.normalize_std(before, ctx.std, ctx)
        with np.errstate(over="ignore"):  # an overflowed total is made unscorable below
            agg = self.aggregator.aggregate(values, ctx)
        total = np.array(agg.total, dtype=np.float64)
        diagnostics = {"normalized": values, **agg.diagnostics}
        if lonely:
            diagnostics["batch_of_one"] = lonely
        for i in np.flatnonzero(np.isinf(total)).tolist():  # no consumer may be handed ±inf
            unscorable.setdefault(i, f"the aggregate is {total[i]} (it overflowed)")
        if unscorable:
            total[list(unscorable)] = np.nan
            diagnostics["unscorable"] = unscorable
        truncated = self._truncated(samples)
        if truncated:
            diagnostics["truncated"] = truncated
        return ScoreResult(batch, total, diagnostics)

    def _batch_of_one(self, samples: Sequence[Sample], normalize: bool) -> list[str]:
        from rewardhub.batch_of_one import BatchOfOneWarning, advice, batch_of_one

        lines = batch_of_one(self, samples)
        if not normalize:
            lines = [line for line in lines if not line.startswith("normalize")]
        if lines and not self._warned_batch_of_one:
            self._warned_batch_of_one = True
            warnings.warn(advice(lines), BatchOfOneWarning, stacklevel=4)
        return lines

    def _truncated(self, samples: Sequence[Sample]) -> dict[str, list[int]]:
        """``{source id: tokens cut per sample}`` for the sources that cut long completions
        (``overflow: truncate``) and cut any of these."""
        out: dict[str, list[int]] = {}
        for b in self.engine.sources:
            if samples and isinstance(b.source, Truncates):
                cut = b.source.truncated_tokens(samples)
                if any(cut):
                    out[b.id] = cut
        return out

    def _apply_abstain_policy(self, batch: RewardBatch) -> tuple[FloatArray, dict[int, str]]:
        """The values handed to the normalisers, and ``{row: reason}`` of the samples that
        are unscorable (their total is NaN). Not-applicable cells stay NaN (skipped) and
        failed cells hold their failing value under every policy."""
        policy = self.spec.on_abstain
        values = batch.values
        mask = batch.unscorable
        if policy == "renormalize" or not mask.any():
            return values, {}
        if isinstance(policy, FillPolicy):
            return np.where(mask, policy.fill, values), {}
        rows = np.flatnonzero(mask.any(axis=1)).tolist()

        def why(i: int) -> str:
            j = int(np.flatnonzero(mask[i])[0])
            return f"{batch.sources[j]}: {batch.reason(i, j) or 'abstained'}"

        if policy == "fail":
            i = rows[0]
            raise AbstainError(
                f"sample {i}: could not be scored ({why(i)}) and on_abstain is 'fail'; use "
                "the default 'unscorable', {fill: value} or 'renormalize' to go on"
            )
        # unscorable: the sample takes no part in normalisation or aggregation
        values = values.copy()
        values[rows] = np.nan
        return values, {i: why(i) for i in rows}

    def update(self, result: ScoreResult, samples: Sequence[Sample] = ()) -> None:
        """Feed a scored batch back to stateful aggregators (e.g. a Lagrangian's dual)."""
        self.aggregator.update(result.vector, Context.for_batch(result.vector, samples))

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "normalizers": [n.state_dict() for n in self.normalizers],
            "aggregator": self.aggregator.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        norms = state.get("normalizers", [])
        if len(norms) != len(self.normalizers):
            raise RewardHubError(
                f"state has {len(norms)} normalizer states, this pipeline has {len(self.normalizers)}"
            )
        for n, s in zip(self.normalizers, norms):
            n.load_state_dict(s)
        self.aggregator.load_state_dict(state.get("aggregator", {}))

    def save_state(self, path: str | Path) -> None:
        Path(path).write_text(
            json.dumps(self.state_dict(), default=_json_default), encoding="utf-8"
        )

    def load_state(self, path: str | Path) -> None:
        self.load_state_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def close(self) -> None:
        self.engine.close()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its recipe: the spec, the hub's plugins, the spec's folder and the
        normaliser/aggregator state. The other side builds its own sources, caches and loop
        (a process pool or Ray worker gets a working pipeline, not shared handles)."""
        return (_rebuild, (self.spec, _HubRecipe.of(self.hub), self._base, self.state_dict()))

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Pipeline(objectives={list(self.objectives)}, "
            f"sources={[b.id for b in self.engine.sources]}, aggregate={self.aggregator.method!r})"
        )


@dataclass(frozen=True)
class _ModuleRef:
    """A plugin module, pickled by name and imported again on the other side."""

    name: str

    def load(self) -> object:
        return importlib.import_module(self.name)


@dataclass(frozen=True)
class _HubRecipe:
    """How to build an equivalent Hub in another process."""

    plugins: tuple[object, ...]
    builtins: bool
    entry_points: bool

    @classmethod
    def of(cls, hub: Hub) -> _HubRecipe:
        infos = hub.plugins()
        explicit = []
        for info in infos:
            obj = hub.pm.get_plugin(info.name)
            if info.builtin or info.distribution is not None or obj is None:
                continue
            explicit.append(_ModuleRef(obj.__name__) if isinstance(obj, ModuleType) else obj)
        return cls(
            tuple(explicit),
            builtins=any(i.builtin for i in infos),
            entry_points=any(i.distribution is not None for i in infos),
        )

    def build(self) -> Hub:
        plugins = [p.load() if isinstance(p, _ModuleRef) else p for p in self.plugins]
        return Hub(plugins, builtins=self.builtins, entry_points=self.entry_points)


def _rebuild(
    spec: PipelineSpec, hub: _HubRecipe, base: Path | None, state: Mapping[str, Any]
) -> Pipeline:
    token = base_dir.set(base)
    try:
        pipe = Pipeline(spec, hub=hub.build())
    finally:
        base_dir.reset(token)
    pipe.load_state_dict(state)
    return pipe


def as_samples(samples: Sequence[Sample | Mapping[str, Any]]) -> list[Sample]:
    """``samples`` as ``Sample`` objects; a mapping is read like a JSONL line of ``score``."""
    if isinstance(samples, (Sample, Mapping, str)):
        raise InputError(
            f"samples: expected a list of samples, got one {type(samples).__name__}; "
            "wrap it in a list"
        )
    out = []
    for i, s in enumerate(samples):
        if isinstance(s, Sample):
            out.append(s)
            continue
        try:
            out.append(Sample.from_dict(s))
        except InputError as exc:
            raise InputError(f"samples[{i}]: {exc}") from None
    return out


def _reorder(batch: RewardBatch, objectives: tuple[str, ...]) -> RewardBatch:
    if batch.objectives == objectives:
        return batch
    missing = [o for o in objectives if o not in batch.objectives]
    if missing:
        raise RewardHubError(
            f"the reward vector lacks objective(s) {missing} of this pipeline; it has "
            f"{list(batch.objectives)}"
        )
    return batch.columns([batch.index(o) for o in objectives])


def _json_default(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    raise TypeError(f"cannot save {type(x).__name__} in pipeline state")
