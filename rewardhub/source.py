"""The RewardSource base class, the ``reward_source`` decorator and the Scores type."""

from __future__ import annotations

import builtins
import contextvars
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from rewardhub.outcome import Abstain as Abstain
from rewardhub.outcome import AbstainNow as AbstainNow
from rewardhub.outcome import Fail as Fail
from rewardhub.outcome import FailNow as FailNow
from rewardhub.outcome import NotApplicable as NotApplicable
from rewardhub.rows import Broken, checked_row, describe
from rewardhub.rows import Row as Row
from rewardhub.rows import Scores as Scores
from rewardhub.rows import ScoresWithStd as ScoresWithStd
from rewardhub.types import Sample

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "rewardhub_deadline", default=None
)


def current_deadline() -> float | None:
    """The ``time.monotonic()`` deadline of the batch being scored (from the spec's
    ``timeout_s``), or None. Sources that start processes or wait on I/O bound their work by
    it and stop at it; the engine stops waiting there either way."""
    return _DEADLINE.get()


def time_left(default: float | None = None) -> float | None:
    """Seconds until :func:`current_deadline` (never negative), or ``default`` without one."""
    deadline = _DEADLINE.get()
    return default if deadline is None else max(0.0, deadline - time.monotonic())


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardSource:
    """Base class of every reward source.

    Subclasses set ``type`` (the name specs use), ``objectives`` (or override
    :meth:`objectives_for`), an optional pydantic ``Config``, and implement ``score``
    (batched, sync) and/or ``async def ascore``. Instances are built from validated config
    only and must be picklable.
    """

    type: ClassVar[str] = ""
    objectives: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[builtins.type[BaseModel]] = EmptyConfig
    #: one line shown by ``rewardhub plugins`` (defaults to the docstring's first line)
    summary: ClassVar[str] = ""
    #: bump when the scoring logic changes, so cached results are not reused
    version: ClassVar[str] = "1"
    #: cheap pure-Python scoring (rules, regexes): batches run in the engine's own thread
    #: instead of hopping to a worker thread, which only costs time when the GIL is held
    #: throughout. Leave False for anything that waits (I/O, subprocesses) or releases the GIL
    #: (models). A spec ``timeout_s`` sends the source to a worker thread anyway. Inline
    #: sources also skip the disk cache (a look-up costs more than scoring them again) unless
    #: the spec's ``cache.cheap_sources`` asks for it.
    inline: bool = False
    #: the value a failed check (:class:`Fail`) scores on each objective: the worst score the
    #: source gives an honest completion, so that no failure earns more than failing
    fail_value: ClassVar[float] = 0.0

    def __init__(self, config: BaseModel | Mapping[str, Any] | None = None) -> None:
        if isinstance(config, self.Config):
            self.config: Any = config
        else:
            self.config = self.Config.model_validate(dict(config or {}))

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        """The objectives this source produces under ``config`` (default: ``objectives``)."""
        return tuple(cls.objectives)

    @property
    def output_objectives(self) -> tuple[str, ...]:
        return tuple(self.objectives_for(self.config))

    def fail_values(self) -> tuple[float, ...]:
        """The failing value of each output objective (default: ``fail_value`` for all)."""
        return (float(self.fail_value),) * len(self.output_objectives)

    def cache_files(self) -> Sequence[Path]:
        """The files (or folders) this source reads besides its config: a policy, a schema, a
        module, a data file. Their contents are part of the cache key, so editing one
        invalidates the cached results."""
        return ()

    @classmethod
    def is_async(cls) -> bool:
        """True when the subclass implements ``ascore`` (the engine then prefers it)."""
        return cls.ascore is not RewardSource.ascore

    def score(self, samples: list[Sample]) -> Scores:
        """Score a batch: one row of ``len(objectives)`` values per sample."""
        raise NotImplementedError(f"source type {self.type!r} implements neither score nor ascore")

    async def ascore(self, samples: list[Sample]) -> Scores:
        """Async variant of :meth:`score`; defaults to calling ``score``."""
        return self.score(samples)

    def close(self) -> None:
        """Release resources (worker pools, models). Called by ``Pipeline.close``."""


#: exceptions that stop the run instead of abstaining on a sample
_STOP = (KeyboardInterrupt, GeneratorExit)


def score_each(fn: Callable[[Sample], Any], samples: Sequence[Sample], k: int) -> list[Row]:
    """``fn`` on each sample alone: one sample that raises (even a ``BaseException`` such as
    pyo3's ``PanicException`` or ``SystemExit``) or returns a wrong value loses only its own row."""
    out: list[Row] = []
    for s in samples:
        try:
            out.append(checked_row(fn(s), k))
        except FailNow as exc:
            out.append(Fail(exc.reason))
        except _STOP:
            raise
        except BaseException as exc:
            out.append(Broken(describe(exc)))
    return out


def reward_source(
    name: str,
    objectives: Sequence[str] = (),
    *,
    config: type[BaseModel] | None = None,
    batched: bool = False,
) -> Callable[[Callable[..., Any]], type[RewardSource]]:
    """Turn a function into a RewardSource class.

    The function takes one ``Sample`` (or, with ``batched=True``, the list) and, when a
    ``config`` model is given, the validated config as a second argument. It returns a
    float, a list of floats, ``None`` (abstain), :class:`Abstain`, :class:`Fail` or
    :class:`NotApplicable`. Unless ``batched``, each
    sample is scored alone: one that raises or returns a wrong value abstains by itself. Without
    ``objectives`` the single objective is named after the source type ``name``.
    """
    objs = tuple(objectives) or (name,)

    def decorate(fn: Callable[..., Any]) -> type[RewardSource]:
        takes_config = config is not None

        def score(self: RewardSource, samples: list[Sample]) -> Scores:
            args = (self.config,) if takes_config else ()
            if batched:
                return fn(samples, *args)  # type: ignore[no-any-return]
            return score_each(lambda s: fn(s, *args), samples, len(self.output_objectives))

        attrs: dict[str, Any] = {
            "type": name,
            "objectives": objs,
            "score": score,
            "__doc__": fn.__doc__,
            "__module__": fn.__module__,
            "__qualname__": fn.__qualname__,
            "function": staticmethod(fn),
        }
        if config is not None:
            attrs["Config"] = config
        return type(fn.__name__, (RewardSource,), attrs)

    return decorate
