"""OpenJudge (``py-openjudge``, built against 0.2.4): graders as a source, a pipeline as a grader.

- ``openjudge`` source: one OpenJudge grader per objective, run over the batch with OpenJudge's
  own ``GradingRunner`` (concurrent, each evaluation on its own copy of the grader). A
  ``GraderScore`` is a value, a ``GraderError`` (their record of a grader that raised or could
  not answer) *could not score* with its error as the reason.
- :func:`pipeline_grader`: a rewardhub pipeline as an OpenJudge pointwise grader returning a
  ``GraderScore`` (per-objective values, outcomes and reasons in its metadata), or a
  ``GraderError`` for an unscorable sample, OpenJudge's own way of saying "no score".
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.bridges._common import (
    BridgeSource,
    PipelineBridge,
    chat,
    framework,
    instance_of,
    number,
    ref_files,
)
from rewardhub.bridges._openjudge_args import to_sample as to_sample
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Row, Scores
from rewardhub.types import Sample

if TYPE_CHECKING:
    from rewardhub.adapters._common import SpecLike
    from rewardhub.hub import Hub


class GraderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grader: str = Field(
        description="'module:name' or 'file.py:name' of a grader instance, a grader class "
        "(built with `kwargs`) or a function returning one"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="to build the grader")
    mapper: dict[str, str] = Field(
        default_factory=dict,
        description="grader argument → path in the sample's data (query, response, "
        "reference_response, reference, messages, metadata.<key>); OpenJudge's mapper. Empty: "
        "the data fields the grader's arguments name",
    )


class OpenJudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graders: dict[str, GraderSpec] = Field(
        min_length=1, description="objective → the OpenJudge grader that scores it"
    )
    max_concurrency: int = Field(32, ge=1, description="evaluations in flight at once")


def sample_data(sample: Sample) -> dict[str, Any]:
    """The fields an OpenJudge grader reads, from a sample (OpenJudge's argument names)."""
    reference = sample.reference
    return {
        **sample.metadata,
        "query": sample.prompt_text,
        "response": sample.completion,
        "reference_response": "" if reference is None else str(reference),
        "reference": reference,
        "messages": chat(sample),
        "metadata": dict(sample.metadata),
    }


#: what a grader that names no argument (only ``**kwargs``) receives
STANDARD_FIELDS = frozenset({"query", "response", "reference_response"})


def _accepted(grader: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Keep the data fields the grader's ``_aevaluate`` (a FunctionGrader's function) names.
    Not the rest, even when it takes ``**kwargs``: graders forward those to their scoring
    functions (``StringMatchGrader``), so an unexpected field would be an unexpected argument;
    one that names none gets the standard fields. A mapper passes anything else."""
    fn = getattr(grader, "func", None) or grader._aevaluate
    params = inspect.signature(fn).parameters
    names = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    keep = names or STANDARD_FIELDS
    return lambda data: {k: v for k, v in data.items() if k in keep}


class OpenJudge(BridgeSource):
    """OpenJudge graders (py-openjudge), one per objective, run by OpenJudge's GradingRunner."""

    type = "openjudge"
    Config = OpenJudgeConfig
    extra = "openjudge"

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.graders)

    def build(self) -> Any:
        from openjudge.graders.base_grader import BaseGrader
        from openjudge.runner.grading_runner import GradingRunner
        from openjudge.utils.mapping import parse_data_with_mapper

        configs: dict[str, Any] = {}
        for name, spec in self.config.graders.items():
            where = f"graders.{name}.grader"
            obj = instance_of(
                self.load(spec.grader, where),
                BaseGrader,
                spec.kwargs,
                f"{self.type} source: {where}",
                spec.grader,
                "an OpenJudge grader",
            )
            keep = _accepted(obj)
            mapper = dict(spec.mapper)

            def mapped(
                data: dict[str, Any],
                keep: Callable[[dict[str, Any]], dict[str, Any]] = keep,
                mapper: dict[str, str] = mapper,
            ) -> dict[str, Any]:
                return dict(parse_data_with_mapper(data, mapper)) if mapper else keep(data)

            configs[name] = (obj, mapped)
        return GradingRunner(
            configs, max_concurrency=self.config.max_concurrency, show_progress=False
        )

    def cache_files(self) -> tuple[Any, ...]:
        self.built  # noqa: B018 - imports the modules, so that their files are known
        return tuple(
            p for spec in self.config.graders.values() for p in ref_files(spec.grader, self._base)
        )

    async def ascore(self, samples: list[Sample]) -> Scores:
        if not samples:
            return []
        results = await self.built.arun([sample_data(s) for s in samples])
        return [
            self._row([results[name][i] for name in self.config.graders])
            for i in range(len(samples))
        ]

    def _row(self, results: list[Any]) -> Row:
        from openjudge.graders.schema import GraderError, GraderScore

        row: list[float | None] = []
        for name, result in zip(self.config.graders, results):
            if isinstance(result, GraderError):
                return Abstain(f"openjudge grader {name!r}: {result.error or result.reason}")
            if not isinstance(result, GraderScore):
                return Abstain(
                    f"openjudge grader {name!r} returned a {type(result).__name__}; only "
                    "pointwise graders (GraderScore) score single samples"
                )
            value = number(result.score)
            if value is None:
                return Abstain(f"openjudge grader {name!r} scored {result.score!r}")
            row.append(value)
        return row


def pipeline_grader(
    spec: SpecLike = None, *, hub: Hub | None = None, name: str = "rewardhub"
) -> Any:
    """A rewardhub pipeline as an OpenJudge pointwise grader (``await grader.aevaluate(query=,
    response=, reference_response=)``, or in a ``GradingRunner``).

    It returns a ``GraderScore`` whose score is the pipeline's total and whose metadata holds
    ``objectives`` (value per objective), ``outcomes`` and ``reasons``; an unscorable sample
    gives a ``GraderError`` (OpenJudge's "no score"), never a made-up 0."""
    framework("openjudge", "pipeline_grader")
    from rewardhub.bridges._openjudge_grader import PipelineGrader

    return PipelineGrader(PipelineBridge(spec, hub, "an OpenJudge grader"), name=name)


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(OpenJudge)
