"""The conformance kit catches what it promises to, and says what to fix."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

import rewardhub as rh
from rewardhub import testing
from rewardhub.testing import (
    ConformanceError,
    check_aggregator,
    check_normalizer,
    check_source,
    rewardhub_conformance,
    source_checks,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: float = 1.0


class Good(rh.RewardSource):
    type = "kit-good"
    objectives = ("len",)
    Config = Strict
    inline = True

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[self.config.scale * min(len(s.completion), 100)] for s in samples]


class AsyncOnly(Good):
    type = "kit-async"
    inline = False

    async def ascore(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[float(len(s.completion) % 7)] for s in samples]

    score = rh.RewardSource.score  # only ascore exists


class Seeded(Good):
    type = "kit-seeded"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        seed: int = 0

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[random.Random(f"{self.config.seed}:{s.key}").random()] for s in samples]


def test_good_and_async_only_sources_pass() -> None:
    check_source(Good, {"scale": 2.0})
    check_source(AsyncOnly)  # the old kit called .score directly and failed here


def test_a_type_name_is_looked_up_in_the_hub() -> None:
    check_source("length")


def _fails(cls: type[Any], *needles: str, config: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConformanceError) as info:
        check_source(cls, config)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "how to fix:" in msg
    return msg


def test_batch_dependence_is_reported_as_batch_invariance() -> None:
    class BatchMean(Good):
        type = "kit-batch-mean"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            mean = sum(len(s.completion) for s in samples) / max(len(samples), 1)
            return [[len(s.completion) - mean] for s in samples]

    _fails(BatchMean, "batch invariance")


class Rounding(Good):
    """A batched model's float noise: each score moves by ``eps`` relative per batch row."""

    type = "kit-rounding"
    eps = 1e-9

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        wobble = 1 + self.eps * len(samples)
        return [[(1 + len(s.completion)) * wobble] for s in samples]


class RoundingDeclared(Rounding):
    type = "kit-rounding-declared"
    tolerance = 1e-6


class DriftBeyondTolerance(RoundingDeclared):
    type = "kit-drift"
    eps = 1e-4


def test_declared_tolerance_admits_float_rounding_but_not_batch_dependence() -> None:
    _fails(Rounding, "batch")  # exact by default
    check_source(RoundingDeclared)
    msg = _fails(DriftBeyondTolerance, "batch")
    assert "tolerance = 1e-5" in msg


def test_wrong_shape_names_expected_and_actual_shapes_and_objectives() -> None:
    class TwoCols(Good):
        type = "kit-two"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            return np.zeros((len(samples), 2))

    _fails(TwoCols, "shape (4, 2)", "expected (4, 1)", "('len',)")


def test_a_config_that_ignores_unknown_fields_is_reported() -> None:
    class Loose(Good):
        type = "kit-loose"

        class Config(BaseModel):
            scale: float = 1.0

    _fails(Loose, testing.UNKNOWN_FIELD, 'extra="forbid"')


def test_an_exception_escaping_score_is_reported_with_the_fix() -> None:
    class Raises(Good):
        type = "kit-raises"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            if any(not s.completion for s in samples):
                raise KeyError("empty")
            return super().score(samples)

    _fails(Raises, "raised KeyError", "rh.Abstain")


def test_edge_cases_are_run_through_the_engine() -> None:
    class Ascii(Good):
        type = "kit-ascii"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            return [[float(len(s.completion.encode("ascii")) > 0)] for s in samples]

    with pytest.raises(ConformanceError, match="UnicodeEncodeError"):
        check_source(Ascii, samples=[rh.Sample(prompt="p", completion="plain")])


def test_sync_and_async_must_agree() -> None:
    class Disagree(Good):
        type = "kit-disagree"

        async def ascore(self, samples: list[rh.Sample]) -> rh.Scores:
            return [[0.5] for _ in samples]

    _fails(Disagree, "score and ascore disagree")


def test_nondeterminism_is_caught_unless_declared_or_seeded() -> None:
    class Noisy(Good):
        type = "kit-noisy"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            return [[random.random()] for _ in samples]

    with pytest.raises(ConformanceError, match="(?s)two runs scored differently.*seed"):
        testing.SourceCheck(Noisy).check_determinism()
    Noisy.deterministic = False  # type: ignore[attr-defined]
    with pytest.raises(testing.CheckSkipped):
        testing.SourceCheck(Noisy).check_determinism()

    check_source(Seeded)


def test_unpicklable_state_is_reported() -> None:
    class Locked(Good):
        type = "kit-locked"

        def score(self, samples: list[rh.Sample]) -> rh.Scores:
            self.lock = threading.Lock()
            return super().score(samples)

    _fails(Locked, "pickled", "__getstate__")


def test_a_source_reading_files_must_be_rekeyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "words.txt"
    data.write_text("please\n")

    class Reads(Good):
        type = "kit-reads"

        def cache_files(self) -> list[Path]:
            return [data]

    class KeyIgnoresFiles(source_checks.BoundSource):
        def __post_init__(self) -> None:
            self.cache_key = "fixed"

    monkeypatch.setattr(source_checks, "BoundSource", KeyIgnoresFiles)
    with pytest.raises(ConformanceError, match="did not change the cache key"):
        testing.SourceCheck(Reads).check_cache_files()
    assert data.read_text() == "please\n"  # the probe edit was undone

    class Missing(Reads):
        def cache_files(self) -> list[Path]:
            return [tmp_path / "nope"]

    with pytest.raises(ConformanceError, match="not files"):
        testing.SourceCheck(Missing).check_cache_files()


# -- aggregators and normalizers ----------------------------------------------------------------


def test_builtin_methods_pass() -> None:
    check_aggregator("weighted")
    check_normalizer("zscore", {"per": "group"})


def test_position_dependent_aggregator_fails_the_permutation_check() -> None:
    class ByPosition(rh.Aggregator):
        method = "kit-position"

        def aggregate(self, values: Any, ctx: rh.Context) -> rh.Aggregation:
            total = np.nan_to_num(values).mean(axis=1) + np.arange(len(values))
            return rh.Aggregation(total, {})

    with pytest.raises(ConformanceError, match="permuting the rows"):
        check_aggregator(ByPosition)


def test_abstained_row_must_not_outscore_a_scored_one() -> None:
    class ZeroFill(rh.Aggregator):
        method = "kit-zero"

        def aggregate(self, values: Any, ctx: rh.Context) -> rh.Aggregation:
            return rh.Aggregation(
                np.nan_to_num(values).mean(axis=1) + 2.0 * np.isnan(values).all(1)
            )

    with pytest.raises(ConformanceError, match="every objective abstained"):
        check_aggregator(ZeroFill)


def test_normalizer_filling_nan_is_caught() -> None:
    class Fill(rh.Normalizer):
        method = "kit-fill"

        def transform(self, values: Any) -> Any:
            return np.nan_to_num(values)

    with pytest.raises(ConformanceError, match="NaN"):
        check_normalizer(Fill)


test_good_one_liner = rewardhub_conformance(Good, {"scale": 3.0})


def test_one_liner_is_parametrised_over_the_checks() -> None:
    names = [m.args for m in test_good_one_liner.pytestmark]  # type: ignore[attr-defined]
    assert names[0][0] == "check" and {"batch_invariance", "config", "pickle"} <= set(names[0][1])


def test_fixtures(make_samples: Any, make_pipeline: Any, rewardhub_hub: rh.Hub) -> None:
    samples = make_samples(4)
    pipe = make_pipeline({"sources": [{"type": "length", "config": {"target": 5}}]})
    assert pipe.score(samples).total.shape == (4,)
    assert "length" in rewardhub_hub.sources


def test_plugins_md_tutorial_and_testing_blocks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tests.conftest import doc_example

    tutorial = doc_example("plugins.md", "tutorial")
    length = doc_example("plugins.md", "length")
    for mod in (tutorial, length):  # importable, so the pickling check can find the classes
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    check_source(tutorial.Brevity, {"target": 10})
    hub = rh.Hub(plugins=[tutorial], entry_points=False)
    assert hub.sources.owner("brevity") == "doc_example_tutorial"
    assert "check" in tutorial.test_brevity.pytestmark[0].args

    testing_block = doc_example("plugins.md", "testing")
    testing_block.Length = length.Length
    testing_block.test_conformance()
    made: list[rh.Pipeline] = []

    def make_pipeline(spec: Any, hub: rh.Hub) -> rh.Pipeline:
        made.append(rh.Pipeline(spec, hub=hub))
        return made[-1]

    testing_block.test_in_a_pipeline(make_pipeline, testing.make_samples)
    for pipe in made:
        pipe.close()
