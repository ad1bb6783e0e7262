"""The RewardSource base class, the ``reward_source`` decorator and the Scores type."""

from __future__ import annotations

import builtins
import contextvars
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import numpy as np
from pydantic import BaseModel, ConfigDict

from rewardhub.types import FloatArray, Sample


@dataclass(frozen=True)
class Abstain:
    """Return this as a row (or raise :class:`AbstainNow`) to abstain with a reason."""

    reason: str


class AbstainNow(Exception):
    """Raise inside ``score`` to abstain on the whole batch with a reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Fail:
    """Return this as a row (or raise :class:`FailNow`) when the completion itself failed the
    check: a time-out or crash on its content, an unparsable answer. Unlike an abstention (the
    machinery could not score), the cells get the objectives' failing values, so a completion
    can never earn more by breaking the check than by failing it. The reason is kept."""

    reason: str


class FailNow(Exception):
    """Raise inside ``score`` when the completions of the whole batch failed the check."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


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


@dataclass(frozen=True)
class ScoresWithStd:
    """Scores plus their standard deviations (ensembles, sampled judges)."""

    values: Any
    std: Any


Row: TypeAlias = "Sequence[float | None] | Abstain | Fail | None"
#: What ``score`` returns: an (n × k) array, a list of n rows (a row is k floats, ``None``,
#: :class:`Abstain` or :class:`Fail`), or :class:`ScoresWithStd`. NaN in a cell abstains on that cell.
Scores: TypeAlias = "FloatArray | Sequence[Row] | ScoresWithStd"


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


#: what a cell of a score may be: Python and numpy numbers. ``bool`` is a number in Python
#: (True is 1.0), so a check may return one; strings, bytes and containers are never coerced.
NUMBER = (int, float, np.integer, np.floating, np.bool_)


def wrong_output(value: Any) -> str:
    """The abstain reason for a value that is not a score (never coerced to one)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"wrong output: {type(value).__name__} {text}, expected a number"


def checked_row(value: Any, k: int) -> Row:
    """What a per-sample function returned, as a row of ``k`` cells, or an :class:`Abstain`
    saying why it is not one. Nothing is coerced: a string, bytes or a dict is a wrong output,
    not its characters or keys; ``inf`` and ints too large for a float abstain."""
    if value is None or isinstance(value, (Abstain, Fail)):
        return value
    if isinstance(value, NUMBER):
        cells: list[Any] = [value]
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        cells = list(value)
    else:
        return Abstain(f"{wrong_output(value)}, a list of {k} numbers, None or rh.Abstain")
    if len(cells) != k:
        return Abstain(f"wrong output: {len(cells)} values, expected {k}")
    row: list[float | None] = []
    for c in cells:
        if c is None:
            row.append(None)
            continue
        if not isinstance(c, NUMBER):
            return Abstain(wrong_output(c))
        try:
            f = float(c)
        except OverflowError:
            return Abstain(f"wrong output: an int of {int(c).bit_length()} bits is too large")
        if math.isinf(f):
            return Abstain(f"wrong output: {f}; rewards must be finite (NaN or None abstains)")
        row.append(f)
    return row


#: exceptions that stop the run instead of abstaining on a sample
_STOP = (KeyboardInterrupt, GeneratorExit)


def score_each(fn: Callable[[Sample], Any], samples: Sequence[Sample], k: int) -> list[Row]:
    """``fn`` on each sample alone: one sample that raises (even a ``BaseException`` such as
    pyo3's ``PanicException`` or ``SystemExit``) or returns a wrong value loses only its own row."""
    from rewardhub.engine import _describe  # the engine words errors; it imports this module

    out: list[Row] = []
    for s in samples:
        try:
            out.append(checked_row(fn(s), k))
        except FailNow as exc:
            out.append(Fail(exc.reason))
        except _STOP:
            raise
        except BaseException as exc:
            out.append(Abstain(_describe(exc)))
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
    float, a list of floats, ``None`` (abstain) or :class:`Abstain`. Unless ``batched``, each
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
