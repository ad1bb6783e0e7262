"""A test kit for plugin authors (also a pytest plugin, loaded through ``pytest11``).

- :func:`check_source`, :func:`check_aggregator`, :func:`check_normalizer` run the
  conformance checks every registered type must pass; a failure says what to fix;
- :func:`rewardhub_conformance` turns them into a parametrised pytest test in one line;
- :func:`plugin_with` wraps classes into a plugin object for ``Hub(plugins=[...])``;
- fixtures ``rewardhub_hub`` (a fresh Hub), ``make_pipeline`` (spec dict → Pipeline, closed
  after the test) and ``make_samples`` (n varied samples, in prompt groups).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from rewardhub._loop import run_sync
from rewardhub.aggregate.base import Aggregator, Context, Normalizer
from rewardhub.building import building_with
from rewardhub.engine import BoundSource, Engine
from rewardhub.hookspecs import hookimpl
from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline
from rewardhub.registry import AggregatorRegistry, NormalizerRegistry, Registry, SourceRegistry
from rewardhub.rows import to_rows
from rewardhub.source import RewardSource
from rewardhub.spec import errors_to_spec_error
from rewardhub.types import FloatArray, RewardBatch, Sample

T = TypeVar("T")

DEFAULT_SAMPLES: tuple[Sample, ...] = (
    Sample(prompt="Say hi", completion="hi there"),
    Sample(prompt="2+2?", completion="The answer is \\boxed{4}.", reference="4"),
    Sample(prompt=[{"role": "user", "content": "Tell me a joke"}], completion=""),
    Sample(prompt="x", completion="ünïcödé ✓ " * 50, metadata={"group": "g1"}),
)
#: a config key no source declares: a config that accepts it would silently ignore typos
UNKNOWN_FIELD = "no_such_field_conformance"


class ConformanceError(AssertionError):
    """A conformance check failed; the message says what to fix."""


def _fail(name: str, what: str, fix: str) -> ConformanceError:
    return ConformanceError(f"{name}: {what}\n  how to fix: {fix}")


class _Plugin:
    """A plugin object registering the classes it was given (see :func:`plugin_with`)."""

    def __init__(self, classes: Sequence[type[Any]], name: str) -> None:
        self.classes = list(classes)
        self.__name__ = name

    @hookimpl
    def register_sources(self, registry: SourceRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, RewardSource):
                registry.add(cls)

    @hookimpl
    def register_aggregators(self, registry: AggregatorRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, Aggregator):
                registry.add(cls)

    @hookimpl
    def register_normalizers(self, registry: NormalizerRegistry) -> None:
        for cls in self.classes:
            if issubclass(cls, Normalizer):
                registry.add(cls)


def plugin_with(*classes: type[Any], name: str = "test-plugin") -> object:
    """A plugin that registers ``classes`` (sources, aggregators, normalizers)."""
    return _Plugin(classes, name)


# -- samples -----------------------------------------------------------------------------------


def make_samples(n: int = 8, *, group_size: int = 2, seed: int = 0) -> list[Sample]:
    """``n`` varied samples (plain and chat prompts, references, unicode), ``group_size``
    completions per prompt (``metadata["group"]``), reproducible under ``seed``."""
    rng = np.random.default_rng(seed)
    words = ["the", "answer", "is", "4", "because", "2+2", "ünïcödé", "✓", "please", "thanks"]
    out = []
    for i in range(n):
        g = i // max(group_size, 1)
        prompt: str | list[dict[str, str]] = (
            [{"role": "user", "content": f"question {g}"}] if g % 2 else f"question {g}?"
        )
        text = " ".join(rng.choice(words, size=int(rng.integers(1, 12))).tolist())
        out.append(Sample(prompt=prompt, completion=text, reference=str(g), metadata={"group": g}))
    return out


def edge_samples(base: Sample) -> list[Sample]:
    """``base`` with the completions and prompts sources most often break on."""
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    return [
        replace(base, completion=""),
        replace(base, completion="   \n\t "),
        replace(base, completion="ünïcödé ✓ 😀 中文 العربية \u200b\x00"),
        replace(base, completion="word " * 20_000),
        replace(base, completion="x" * 100_000),
        replace(base, prompt=chat),
        replace(base, prompt=""),
    ]


# -- sources -----------------------------------------------------------------------------------


def _resolve(kind: Registry[T], cls_or_name: type[T] | str, hub: Hub | None) -> type[T]:
    if isinstance(cls_or_name, str):
        return getattr(hub or Hub(), _REGISTRY[type(kind)]).get(cls_or_name)  # type: ignore[no-any-return]
    return cls_or_name


_REGISTRY: dict[type[Any], str] = {
    SourceRegistry: "sources",
    AggregatorRegistry: "aggregators",
    NormalizerRegistry: "normalizers",
}


def _same(a: FloatArray, b: FloatArray, tol: float = 0.0) -> bool:
    if a.shape != b.shape:
        return False
    if tol == 0.0:
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True))


def _first_diff(a: FloatArray, b: FloatArray, tol: float = 0.0) -> str:
    bad = np.argwhere(~np.isclose(a, b, equal_nan=True, rtol=tol, atol=tol))
    if not bad.size:
        return ""
    i = tuple(bad[0].tolist())
    return f" (first difference at {i}: {a[i]!r} vs {b[i]!r})"


class SourceCheck:
    """One source class under one config and sample set; each ``check_*`` method is a check."""

    def __init__(
        self,
        cls: type[RewardSource],
        config: Mapping[str, Any] | None = None,
        samples: Sequence[Sample] | None = None,
    ) -> None:
        self.cls = cls
        self.config = dict(config or {})
        self.samples = list(samples or DEFAULT_SAMPLES)
        self.name = f"source {cls.type or cls.__name__!r}"
        self._main: RewardBatch | None = None
        self._shared: RewardSource | None = None

    # helpers

    @property
    def tolerance(self) -> float:
        """How far two scorings of one sample may differ (the source's ``tolerance`` class
        attribute, default 0: exactly equal). Batched float32 models round differently with
        the batch's padding and shape, so they declare a small relative tolerance."""
        return float(getattr(self.cls, "tolerance", 0.0))

    def new(self, config: Mapping[str, Any] | None = None) -> RewardSource:
        try:
            return self.cls(dict(self.config if config is None else config))
        except ValidationError as exc:
            raise _fail(
                self.name,
                f"the config {self.config!r} is invalid: {exc}",
                "pass a valid config to the kit",
            ) from None

    @property
    def shared(self) -> RewardSource:
        """One instance reused by the checks that need no fresh one (sources with worker pools
        are slow to start); closed by :meth:`close`."""
        if self._shared is None:
            self._shared = self.new()
        return self._shared

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def run(
        self,
        samples: Sequence[Sample],
        *,
        source: RewardSource | None = None,
        batch_size: int = 256,
    ) -> RewardBatch:
        """Score through the engine's async path, as a pipeline does (no cache)."""
        src = source or self.shared
        bound = BoundSource(
            "conformance", src, src.output_objectives, batch_size=batch_size, cache=False
        )
        engine = Engine([bound])
        try:
            return engine.score(samples)
        finally:
            engine.sources = []  # the source outlives this engine: close only the engine's own
            engine.close()

    def raw(self, source: RewardSource, samples: list[Sample], *, use_async: bool) -> Any:
        try:
            if use_async:
                return run_sync(source.ascore(samples))
            return source.score(samples)
        except Exception as exc:
            how = "ascore" if use_async else "score"
            raise _fail(
                self.name,
                f"{how} raised {type(exc).__name__}: {exc} on {len(samples)} conformance sample(s)",
                "return rh.Abstain(reason) (or raise rh.AbstainNow) when the machinery cannot "
                "score, and rh.Fail(reason) when the completion fails the check; an exception "
                "is a bug the engine can only report as 'error: ...'",
            ) from exc

    @property
    def main(self) -> RewardBatch:
        if self._main is None:
            self._main = self.run(self.samples)
        return self._main

    def _broken(self, samples: Sequence[Sample], what: str) -> None:
        """The source raised on a sample or returned something that is not a row (which the
        engine turns into an abstention the source did not choose)."""
        source = self.shared
        k = len(source.output_objectives)
        out = self.raw(source, list(samples), use_async=source.is_async())
        try:
            rows = to_rows(out, len(samples), k, source.fail_values())
        except (ValueError, TypeError) as exc:
            raise _fail(
                self.name,
                f"on the {what} samples the output is not {len(samples)} rows: {exc}",
                "return one row per sample",
            ) from None
        for i in rows.broken:
            raise _fail(
                self.name,
                f"on {what} sample {i} (completion {samples[i].completion[:40]!r}…) the "
                f"engine recorded {rows.reasons[i]!r}",
                "handle this input: return a value, rh.Abstain(reason) or rh.Fail(reason), "
                "and rows of exactly len(objectives) finite numbers",
            )

    # checks

    def check_declaration(self) -> None:
        """A type name; declared objectives, non-empty and unique."""
        if not self.cls.type:
            raise _fail(self.name, "has no `type` name", "set the class attribute `type`")
        objectives = self.new().output_objectives
        if not objectives:
            raise _fail(
                self.name,
                "declares no objectives",
                "set `objectives = (...)` or override objectives_for(config)",
            )
        if len(set(objectives)) != len(objectives) or not all(
            isinstance(o, str) and o for o in objectives
        ):
            raise _fail(
                self.name,
                f"objectives must be unique non-empty names, got {objectives}",
                "give each output column its own name",
            )

    def check_config(self) -> None:
        """The config schema is exported; unknown and mistyped fields are rejected by name."""
        model = self.cls.Config
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise _fail(self.name, "Config is not a pydantic model", "subclass pydantic.BaseModel")
        try:
            json.dumps(model.model_json_schema())
        except Exception as exc:
            raise _fail(
                self.name,
                f"its Config has no JSON Schema ({type(exc).__name__}: {exc}), so "
                "`rewardhub schema` and editors cannot check specs",
                "use JSON-compatible field types (or annotate them with a json_schema_extra)",
            ) from None
        bad = {**self.config, UNKNOWN_FIELD: 1}
        self._rejects(bad, UNKNOWN_FIELD, 'add `model_config = ConfigDict(extra="forbid")`')
        for field, info in model.model_fields.items():
            if field in self.config or info.annotation in (Any, object):
                continue
            wrong = {**self.config, field: {"not": ["a", "valid", "value"]}}
            try:
                model.model_validate(wrong)
            except ValidationError:
                self._rejects(wrong, field, "")

    def _rejects(self, data: dict[str, Any], field: str, fix: str) -> None:
        try:
            self.cls.Config.model_validate(data)
        except ValidationError as exc:
            message = str(errors_to_spec_error(exc, self.cls.Config, "sources[0].config", "config"))
            if field not in message:
                raise _fail(
                    self.name,
                    f"a bad value of {field!r} is rejected with {message!r}, which does not "
                    "name the field",
                    "raise from field validators (pydantic names the field) rather than "
                    "from __init__",
                ) from None
            return
        raise _fail(self.name, f"the config field {field!r} was accepted silently", fix)

    def check_shape(self) -> None:
        """Output rows match the declared objectives, for sync and async entry points."""
        source = self.shared
        k = len(source.output_objectives)
        for use_async in (False, True) if self._both() else (self.cls.is_async(),):
            for batch in (self.samples, []):
                out = self.raw(source, list(batch), use_async=use_async)
                try:
                    to_rows(out, len(batch), k, source.fail_values())
                except (ValueError, TypeError) as exc:
                    raise _fail(
                        self.name,
                        f"{'ascore' if use_async else 'score'} returned {_shape_of(out)} for "
                        f"{len(batch)} samples, expected ({len(batch)}, {k}): one row per "
                        f"sample and one column per objective {source.output_objectives} "
                        f"({exc})",
                        "return one row per sample (also for an empty batch) with a value per "
                        "objective, in the order objectives_for(config) lists them",
                    ) from None

    def check_engine(self) -> None:
        """Through the engine: no exception escapes, NaN cells carry a reason, no inf."""
        batch = self.main
        k = len(self.shared.output_objectives)
        if batch.values.shape != (len(self.samples), k):
            raise _fail(
                self.name,
                f"the engine produced shape {batch.values.shape}, expected "
                f"({len(self.samples)}, {k})",
                "objectives_for(config) must match what score returns",
            )
        self._broken(self.samples, "conformance")
        for i, row in enumerate(batch.values):
            reason = batch.reasons[i].get("conformance")
            if np.isnan(row).any() and not reason:
                raise _fail(
                    self.name,
                    f"sample {i} has NaN without a reason",
                    "abstain with rh.Abstain(reason)",
                )
            if batch.failed[i].any() and np.isnan(row).any():
                raise _fail(self.name, f"sample {i} failed with NaN values", "set fail_value")

    def check_edge_cases(self) -> None:
        """Empty, blank, unicode, very long completions and chat/empty prompts are handled."""
        edges = edge_samples(self.samples[0])
        self.run(edges)  # through the engine too: nothing escapes it
        self._broken(edges, "edge-case")

    def check_batch_invariance(self) -> None:
        """A sample scores the same alone, in a batch, and in any order."""
        main = self.main.values
        alone = self.run(self.samples, batch_size=1).values
        if not _same(main, alone, self.tolerance):
            raise _fail(
                self.name,
                "scores depend on the batch: samples scored one at a time differ from the "
                f"same samples scored together{_first_diff(main, alone, self.tolerance)}",
                "make each sample's reward depend on that sample only (batch invariance): the "
                "engine splits, merges, deduplicates and caches batches freely; a batched "
                "model that differs only by float rounding declares `tolerance = 1e-5`",
            )
        order = list(range(len(self.samples)))[::-1]
        back = self.run([self.samples[i] for i in order]).values[np.argsort(order)]
        if not _same(main, back, self.tolerance):
            raise _fail(
                self.name,
                f"scores depend on the order of the batch{_first_diff(main, back, self.tolerance)}",
                "make each sample's reward depend on that sample only (batch invariance)",
            )

    def check_determinism(self) -> None:
        """Two fresh instances give the same scores (under the same ``seed`` when there is one)."""
        config = dict(self.config)
        seeded = "seed" in self.cls.Config.model_fields
        if seeded:
            config.setdefault("seed", 1234)
        elif not getattr(self.cls, "deterministic", True):
            pytest.skip(f"{self.name} declares deterministic = False and has no seed")
        first, second = (self._fresh_run(config) for _ in range(2))
        if not _same(first, second, self.tolerance):
            raise _fail(
                self.name,
                f"two runs{' with the same seed' if seeded else ''} scored differently"
                f"{_first_diff(first, second, self.tolerance)}",
                "seed every random generator from the config's `seed` field, or set the class "
                "attribute `deterministic = False`",
            )

    def _fresh_run(self, config: Mapping[str, Any]) -> FloatArray:
        source = self.new(config)
        try:
            return self.run(self.samples, source=source).values
        finally:
            source.close()

    def check_async_parity(self) -> None:
        """When both ``score`` and ``ascore`` exist, they agree."""
        if not self._both():
            pytest.skip(f"{self.name} defines only one of score/ascore")
        source = self.shared
        k = len(source.output_objectives)
        fails = source.fail_values()
        sync = to_rows(
            self.raw(source, self.samples, use_async=False), len(self.samples), k, fails
        ).values
        asy = to_rows(
            self.raw(source, self.samples, use_async=True), len(self.samples), k, fails
        ).values
        if not _same(sync, asy, self.tolerance):
            raise _fail(
                self.name,
                f"score and ascore disagree{_first_diff(sync, asy, self.tolerance)}",
                "share one implementation (e.g. ascore awaits the same helper score runs)",
            )

    def check_pickle(self) -> None:
        """A pickled copy, made after scoring, scores the same (process pools and Ray)."""
        source = self.shared
        first = self.main.values
        try:
            clone = pickle.loads(pickle.dumps(source))
        except Exception as exc:
            raise _fail(
                self.name,
                f"cannot be pickled after scoring ({type(exc).__name__}: {exc})",
                "drop unpicklable handles (pools, clients, models) in __getstate__ and rebuild "
                "them lazily",
            ) from None
        try:
            again = self.run(self.samples, source=clone).values
        finally:
            clone.close()
        if not _same(first, again, self.tolerance):
            raise _fail(
                self.name,
                f"a pickled copy scores differently{_first_diff(first, again, self.tolerance)}",
                "keep all scoring state in the config or rebuild it identically",
            )

    def check_cache_files(self) -> None:
        """A source that reads files gets a new cache key when one of them changes."""
        source = self.shared
        files = getattr(source, "cache_files", None)
        paths = [Path(p) for p in (files() if callable(files) else [])]
        if not paths:
            pytest.skip(f"{self.name} reads no files (cache_files() is empty or absent)")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise _fail(
                self.name,
                f"cache_files() lists {missing}, which are not files",
                "return the paths of the files the source reads",
            )
        before = BoundSource("k", source, source.output_objectives).cache_key
        path = paths[0]
        content, stat = path.read_bytes(), path.stat()
        try:
            path.write_bytes(content + b"\n")
            fresh = self.new()
            after = BoundSource("k", fresh, source.output_objectives).cache_key
            fresh.close()
        finally:
            path.write_bytes(content)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        if before == after:
            raise _fail(
                self.name,
                f"editing {path} did not change the cache key, so stale rewards would be reused",
                "list every file the source reads in cache_files()",
            )

    def _both(self) -> bool:
        return self.cls.score is not RewardSource.score and self.cls.is_async()

    def checks(self) -> dict[str, Callable[[], None]]:
        return {
            name.removeprefix("check_"): getattr(self, name)
            for name in SOURCE_CHECKS
            if hasattr(self, name)
        }


SOURCE_CHECKS = (
    "check_declaration",
    "check_config",
    "check_shape",
    "check_engine",
    "check_edge_cases",
    "check_batch_invariance",
    "check_determinism",
    "check_async_parity",
    "check_pickle",
    "check_cache_files",
)


def _shape_of(out: Any) -> str:
    try:
        return f"shape {np.asarray(out, dtype=np.float64).shape}"
    except (ValueError, TypeError):
        return f"{type(out).__name__} {out!r:.80}"


def _run_all(checks: Mapping[str, Callable[[], None]], close: Callable[[], None]) -> None:
    try:
        for check in checks.values():
            try:
                check()
            except pytest.skip.Exception:
                continue
    finally:
        close()


def check_source(
    cls: type[RewardSource] | str,
    config: Mapping[str, Any] | None = None,
    samples: Sequence[Sample] | None = None,
    *,
    hub: Hub | None = None,
) -> None:
    """Assert that a source (a class, or a type name in ``hub``) behaves as every source must.

    Runs it through the engine's async path and checks: objectives declared and matching the
    output; config schema exported and bad config rejected by field name; no exception and
    NaN only with a reason; edge-case inputs; batch invariance; determinism (under a ``seed``
    field when there is one); sync/async parity; pickling; cache re-keying when a file it reads
    (``cache_files()``) changes. Raises :class:`ConformanceError` saying what to fix.
    """
    hub = hub or Hub()
    with building_with(hub):  # nested types (an ensemble's members) come from this hub
        subject = SourceCheck(_resolve(SourceRegistry(), cls, hub), config, samples)
        _run_all(subject.checks(), subject.close)


# -- aggregators and normalizers ---------------------------------------------------------------


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


def conformance_subject(
    cls: type[Any], config: Mapping[str, Any] | None = None, samples: Sequence[Sample] | None = None
) -> SourceCheck | AggregatorCheck | NormalizerCheck:
    """The checks for ``cls`` (a source, aggregator or normalizer class): ``.checks()`` maps
    each check's name to a callable; ``.close()`` releases what they built."""
    if issubclass(cls, RewardSource):
        return SourceCheck(cls, config, samples)
    if issubclass(cls, Aggregator):
        return AggregatorCheck(cls, config, 3)
    if issubclass(cls, Normalizer):
        return NormalizerCheck(cls, config, 3)
    raise TypeError(f"{cls!r} is not a RewardSource, Aggregator or Normalizer subclass")


def rewardhub_conformance(
    cls: type[Any],
    config: Mapping[str, Any] | None = None,
    samples: Sequence[Sample] | None = None,
) -> Callable[[str], None]:
    """A pytest test, parametrised over the conformance checks, in one line::

    test_politeness = rewardhub_conformance(Politeness, {"markers": ["please"]})
    """
    subject = conformance_subject(cls, config, samples)
    checks = subject.checks()

    @pytest.mark.parametrize("check", list(checks))
    def test_rewardhub_conformance(check: str) -> None:
        try:
            checks[check]()
        finally:
            subject.close()

    return test_rewardhub_conformance


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def rewardhub_hub() -> Hub:
    """A fresh Hub with the built-ins and the installed plugins."""
    return Hub()


@pytest.fixture
def make_pipeline(rewardhub_hub: Hub) -> Iterator[Callable[..., Pipeline]]:
    """Build pipelines from spec dicts; each is closed after the test."""
    made: list[Pipeline] = []

    def make(spec: Mapping[str, Any], hub: Hub | None = None) -> Pipeline:
        pipe = Pipeline(spec, hub=hub or rewardhub_hub)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.close()


@pytest.fixture(name="make_samples")
def _make_samples_fixture() -> Callable[..., list[Sample]]:
    """:func:`make_samples` as a fixture: ``make_samples(n, group_size=2, seed=0)``."""
    return make_samples
