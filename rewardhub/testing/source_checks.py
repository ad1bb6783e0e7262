"""The conformance checks of a reward source (:func:`check_source`)."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from rewardhub._loop import run_sync
from rewardhub.building import building_with
from rewardhub.engine import BoundSource, Engine
from rewardhub.hub import Hub
from rewardhub.registry import SourceRegistry
from rewardhub.rows import to_rows
from rewardhub.source import RewardSource
from rewardhub.spec import errors_to_spec_error
from rewardhub.testing._common import (
    UNKNOWN_FIELD,
    CheckSkipped,
    _fail,
    _first_diff,
    _resolve,
    _run_all,
    _same,
)
from rewardhub.testing.samples import DEFAULT_SAMPLES, edge_samples
from rewardhub.types import FloatArray, RewardBatch, Sample


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
            raise CheckSkipped(f"{self.name} declares deterministic = False and has no seed")
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
            raise CheckSkipped(f"{self.name} defines only one of score/ascore")
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
            raise CheckSkipped(f"{self.name} reads no files (cache_files() is empty or absent)")
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
