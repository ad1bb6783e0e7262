"""What the bridges share: the framework's object named in a config, samples as chat
messages, and a pipeline's result per sample with the outcome of each objective."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from rewardhub._optional import require
from rewardhub.errors import SourceError
from rewardhub.rows import NUMBER
from rewardhub.source import Abstain, RewardSource, Scores
from rewardhub.sources.python import ImportFailed, load_object
from rewardhub.spec import base_dir
from rewardhub.types import Outcome, Sample, ScoreResult

if TYPE_CHECKING:  # the pipeline is imported when a bridge is used, not when the hub loads
    from rewardhub.adapters._common import SpecLike
    from rewardhub.hub import Hub
    from rewardhub.pipeline import Pipeline

#: what each bridge's extra installs, and the module that tells whether it is there
EXTRAS = {
    "openenv": "openenv.core.rubrics",
    "verifiers": "verifiers.v1",
    "eval-protocol": "eval_protocol.models",
    "openjudge": "openjudge.graders.base_grader",
}


def framework(extra: str, feature: str) -> ModuleType:
    """Import the framework of ``extra``, or raise MissingExtraError naming the extra."""
    return require(EXTRAS[extra], extra, feature)


def load_ref(ref: str, base: Path | None, who: str, field_name: str) -> Any:
    """The object a config names as ``module:name`` or ``file.py:name``; a SourceError names
    the source and the config field when it cannot be loaded."""
    try:
        return load_object(ref, base)
    except (ValueError, ImportFailed) as exc:
        raise SourceError(f"{who} source: {field_name}: {exc}") from None


def instance_of(
    obj: Any, base: type, kwargs: dict[str, Any], where: str, ref: str, what: str
) -> Any:
    """The framework object a config names: ``obj`` itself when it is a ``base`` instance, or
    what a class or factory ``obj`` builds with ``kwargs``; a SourceError names ``where``."""
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, base)):
        obj = obj(**kwargs)
    elif kwargs:
        raise SourceError(f"{where}: kwargs were given, but {ref!r} is already an instance")
    if not isinstance(obj, base):
        raise SourceError(
            f"{where}: {ref!r} is a {type(obj).__name__}, not {what} (or a class/function "
            "making one)"
        )
    return obj


def check_objectives(
    main: str | None, parts: Sequence[str], main_field: str, parts_field: str
) -> None:
    """A config validator's check: at least one objective, and the main one not repeated."""
    if main is None and not parts:
        raise ValueError(
            f"{main_field} is null and {parts_field} is empty: the source has no objective"
        )
    if main is not None and main in parts:
        raise ValueError(f"{parts_field}: {main!r} is also the {main_field} objective's name")


def failure(what: str, exc: BaseException) -> Abstain:
    """The framework's own code raised: the machinery could not score (never a 0)."""
    text = str(exc).strip().splitlines()
    return Abstain(f"{what} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a number (None, NaN, inf, text:
    never coerced, as the engine never coerces a source's output)."""
    if type(value) is float:  # the common case first: this runs once per cell
        return value if math.isfinite(value) else None
    if not isinstance(value, NUMBER):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def prompt_messages(sample: Sample) -> list[dict[str, Any]]:
    """The sample's prompt as chat messages (a text prompt is one user message)."""
    if isinstance(sample.prompt, str):
        return [{"role": "user", "content": sample.prompt}] if sample.prompt else []
    return [dict(m) for m in sample.prompt]


def chat(sample: Sample) -> list[dict[str, Any]]:
    """The prompt messages followed by the completion as the assistant's reply."""
    return [*prompt_messages(sample), {"role": "assistant", "content": sample.completion}]


def from_chat(
    messages: Sequence[Any], reference: Any = None, metadata: Mapping[str, Any] | None = None
) -> Sample:
    """A Sample from chat messages (dicts or pydantic messages): the last assistant message is
    the completion, the messages before it the prompt."""
    rows = [
        m.model_dump(exclude_none=True) if hasattr(m, "model_dump") else dict(m) for m in messages
    ]
    completion = ""
    if rows and rows[-1].get("role") == "assistant":
        completion = str(rows.pop().get("content") or "")
    messages = [
        {"role": str(r.get("role", "user")), "content": _text(r.get("content"))} for r in rows
    ]
    prompt: str | list[dict[str, Any]] = messages
    if len(messages) == 1 and messages[0]["role"] == "user":  # chat()'s inverse on a text prompt
        prompt = messages[0]["content"]
    return Sample(
        prompt=prompt, completion=completion, reference=reference, metadata=dict(metadata or {})
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


@dataclass(frozen=True)
class Scored:
    """One sample's pipeline result in the terms every framework needs.

    ``total`` is None when the sample is unscorable (``unscorable`` says why). ``values`` has
    every objective: its number, or None when it has none (could not score, not applicable);
    ``outcomes`` the outcome label of each (value, failed, unscorable, not applicable) and
    ``reasons`` the reason of each cell that has one."""

    total: float | None
    values: dict[str, float | None]
    outcomes: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)
    unscorable: str | None = None

    def details(self) -> dict[str, Any]:
        """JSON-ready per-objective details (for a framework's metadata or info field)."""
        return {"objectives": self.values, "outcomes": self.outcomes, "reasons": self.reasons}


def scored(result: ScoreResult) -> list[Scored]:
    """Each sample of ``result`` as a :class:`Scored`."""
    v = result.vector
    assert v.outcomes is not None  # set by RewardBatch
    why = result.diagnostics.get("unscorable", {})
    out = []
    for i in range(v.n):
        values: dict[str, float | None] = {}
        outcomes: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for j, name in enumerate(v.objectives):
            cell = float(v.values[i, j])
            values[name] = cell if math.isfinite(cell) else None
            outcomes[name] = Outcome(int(v.outcomes[i, j])).label
            reason = v.reason(i, j)
            if reason and outcomes[name] != Outcome.VALUE.label:
                reasons[name] = reason
        total = float(result.total[i])
        unscorable = why.get(i) or (None if math.isfinite(total) else "no objective applied")
        out.append(
            Scored(
                total=total if math.isfinite(total) else None,
                values=values,
                outcomes=outcomes,
                reasons=reasons,
                unscorable=unscorable,
            )
        )
    return out


class PipelineBridge:
    """A pipeline that a framework calls one sample (or one group) at a time.

    Specs whose reward for a sample depends on the rest of its batch (group normalisation,
    batch-relative aggregation) are refused: a framework that scores one sample per call
    would get a different reward for the same sample depending on its company."""

    def __init__(self, spec: SpecLike, hub: Hub | None, who: str) -> None:
        from rewardhub.adapters._common import load_pipeline
        from rewardhub.batching import check_rowwise

        self.pipeline: Pipeline = load_pipeline(spec, hub)
        self.who = who
        check_rowwise(self.pipeline, who)

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.pipeline.objectives)

    def score(self, samples: Sequence[Sample]) -> list[Scored]:
        return scored(self.pipeline.score(list(samples)))

    async def ascore(self, samples: Sequence[Sample]) -> list[Scored]:
        return scored(await self.pipeline.ascore(list(samples)))

    def close(self) -> None:
        self.pipeline.close()


class BridgeSource(RewardSource):
    """A source that scores with a framework's object, built from the config on first use (so
    an instance pickles as its config and rebuilds the object in the worker)."""

    #: the extra that installs the framework, and the words for errors
    extra: ClassVar[str] = ""
    what: ClassVar[str] = ""

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._base = base_dir.get()
        self._built: Any = None

    @property
    def built(self) -> Any:
        if self._built is None:
            framework(self.extra, f"the {self.type} source")
            self._built = self.build()
        return self._built

    def build(self) -> Any:
        """The framework's object this source scores with."""
        raise NotImplementedError

    def load(self, ref: str, field_name: str) -> Any:
        return load_ref(ref, self._base, self.type, field_name)

    #: the config field naming the framework's object
    ref_field: ClassVar[str] = ""

    def cache_files(self) -> Sequence[Path]:
        """The file that defines the framework's object: editing it invalidates the cache."""
        self.built  # noqa: B018 - imports the module, so that its file is known
        return ref_files(getattr(self.config, self.ref_field), self._base)

    def score(self, samples: list[Sample]) -> Scores:
        from rewardhub.engine import run_sync

        return run_sync(self.ascore(samples))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_built"] = None  # framework objects hold locks, clients, loops: rebuild them
        return state


def ref_files(ref: str, base: Path | None) -> tuple[Path, ...]:
    """The user's file a ``module:name`` or ``file.py:name`` reference reads (none for the
    code of an installed package), for the cache key."""
    target = ref.rpartition(":")[0]
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute() and base is not None and not path.exists():
            path = base / path
        return (path,) if path.is_file() else ()
    module_file = getattr(sys.modules.get(target), "__file__", None)
    return (Path(module_file),) if module_file and not _installed(module_file) else ()


def _installed(path: str) -> bool:
    """True for a file of an installed package (site-packages): not the user's own code."""
    return "site-packages" in Path(path).parts or "dist-packages" in Path(path).parts
