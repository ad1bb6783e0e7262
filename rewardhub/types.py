"""Core value types: Sample, Objective, RewardBatch, ScoreResult."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from rewardhub import outcome as _outcome
from rewardhub.content_key import SampleKey as SampleKey
from rewardhub.content_key import canonical, canonical_json, computed_once
from rewardhub.errors import InputError
from rewardhub.outcome import Outcome as Outcome
from rewardhub.outcome import OutcomeArray
from rewardhub.outcome import json_number as json_number
from rewardhub.outcome import json_row as json_row

FloatArray = npt.NDArray[np.float64]

_SAMPLE_FIELDS = ("prompt", "completion", "reference", "metadata")


def _check_messages(messages: list[Any]) -> None:
    """Chat messages must be ``{"role": str, "content": str}`` dicts: every source reads them
    so, and one malformed message would otherwise fail the whole batch it lands in."""
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InputError(
                f"Sample.prompt[{i}] must be a chat message {{'role': ..., 'content': ...}}, "
                f"got {type(m).__name__} {m!r:.60}"
            )
        for name in ("role", "content"):
            if not isinstance(m.get(name), str):
                got = "nothing" if name not in m else type(m[name]).__name__
                raise InputError(
                    f"Sample.prompt[{i}].{name} must be a string, got {got}; "
                    "a message is {'role': 'user', 'content': 'text'}"
                )


@dataclass(frozen=True, eq=False)
class Sample:
    """One prompt/completion pair to score.

    ``prompt`` is a string or a list of chat messages; ``reference`` is ground truth for
    verifiers; ``metadata`` carries anything else (``group``, ``data_source``, ``weights``).
    Equality and hashing use the content, so identical samples dedup and share cache entries.
    """

    prompt: str | list[dict[str, Any]]
    completion: str
    reference: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.completion, str):
            raise InputError(
                f"Sample.completion must be a string, got {type(self.completion).__name__}"
            )
        if not isinstance(self.prompt, (str, list)):
            raise InputError(
                "Sample.prompt must be a string or a list of chat messages "
                f"({{'role': ..., 'content': ...}}), got {type(self.prompt).__name__}"
            )
        if isinstance(self.prompt, list):
            _check_messages(self.prompt)
        # ``type(...) is dict`` first: an ABC isinstance check costs more than the rest
        if type(self.metadata) is not dict and not isinstance(self.metadata, Mapping):
            raise InputError(
                f"Sample.metadata must be a mapping, got {type(self.metadata).__name__}"
            )

    @computed_once
    def key(self) -> SampleKey:
        """Content key used for dedup and the in-memory cache (cheap, exact)."""
        prompt = self.prompt
        ref = self.reference
        return (
            prompt if type(prompt) is str else ("json", canonical(prompt)),
            self.completion,
            ref if ref is None or type(ref) is str else ("json", canonical(ref)),
            canonical(self.metadata) if self.metadata else "",
        )

    @property
    def digest(self) -> str:
        """Stable hex digest of the content (on-disk cache key): the key as a JSON array, so
        no two keys share an encoding and no separator can collide."""
        try:
            data = orjson.dumps(self.key)  # the tuple as a JSON array, in C
        except orjson.JSONEncodeError:  # a lone surrogate, which orjson refuses: the standard
            # library's bytes hold its surrogate escape, which orjson's never do, so the two
            # encodings cannot collide
            data = canonical_json(list(self.key)).encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()

    @property
    def prompt_text(self) -> str:
        """The prompt as text: chat messages are joined as ``role: content`` lines."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in self.prompt)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sample) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt, "completion": self.completion}
        if self.reference is not None:
            out["reference"] = self.reference
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, line: int | None = None) -> Sample:
        """Build a Sample from a JSON object; unknown top-level fields go to ``metadata``."""
        if type(data) is not dict and not isinstance(data, Mapping):
            raise InputError(f"expected a JSON object, got {type(data).__name__}", line)
        if "completion" not in data:
            raise InputError(
                "missing field 'completion' (each sample needs at least "
                '{"prompt": ..., "completion": ...})',
                line,
            )
        metadata = data.get("metadata") or {}
        if type(metadata) is not dict and not isinstance(metadata, Mapping):
            raise InputError("field 'metadata' must be a JSON object", line)
        extra = {k: v for k, v in data.items() if k not in _SAMPLE_FIELDS} if len(data) > 2 else {}
        fields = {
            "prompt": data.get("prompt", ""),
            "completion": data["completion"],
            "reference": data.get("reference"),
            "metadata": {**extra, **metadata} if extra else dict(metadata),
        }
        try:
            if cls is not Sample:
                return cls(**fields)
            # the frozen dataclass's __init__ sets each field through object.__setattr__;
            # filling __dict__ at once and running the same checks is half the cost (this
            # runs once per line of every file scored)
            sample = object.__new__(cls)
            sample.__dict__.update(fields)
            sample.__post_init__()
            return sample
        except InputError as exc:
            raise InputError(str(exc), line) from None


@dataclass(frozen=True)
class Objective:
    """A named reward dimension; the item type of a spec's ``objectives:`` list.

    ``higher_is_better=False`` makes the pipeline negate the column, so that after it higher
    is always better. ``bounds`` is the range the source's values lie in (before any
    negation); the ``minmax`` normaliser maps it to [0, 1] instead of the batch's range.
    ``description`` shows in ``rewardhub validate``.
    """

    # read by pydantic when a spec is validated (a plain dict: no pydantic import here)
    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012

    name: str
    description: str = ""
    higher_is_better: bool = True
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an objective needs a non-empty name")
        if self.bounds is not None:
            lo, hi = self.bounds
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"bounds must be two finite numbers [low, high] with low < high, got "
                    f"{list(self.bounds)}"
                )


def _as_matrix(values: Any, n: int | None, k: int, what: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1 and k == 1 and (n is None or arr.shape[0] == n):
        arr = arr.reshape(-1, 1)
    if arr.ndim == 1 and arr.shape[0] == 0:
        arr = arr.reshape(0, k)
    if arr.ndim != 2 or arr.shape[1] != k or (n is not None and arr.shape[0] != n):
        want = f"({n if n is not None else 'n'}, {k})"
        raise ValueError(f"RewardBatch.{what} has shape {arr.shape}, expected {want}")
    return arr


@dataclass(frozen=True, eq=False)
class RewardBatch:
    """An n × k matrix of rewards, one column per objective.

    ``outcomes`` (n × k, :class:`~rewardhub.outcome.Outcome` codes) tells a value, a *not
    applicable* cell, a *failed* check and an *unscorable* cell apart; when not given, a NaN
    cell is unscorable and any other a value. ``reasons[i]`` maps a source id to its reason on
    sample ``i`` (text for people: it never decides an outcome). ``std`` (same shape) is set by
    ensembles and judges. ``sources`` names the source that produced each column.
    """

    values: FloatArray
    objectives: tuple[str, ...]
    std: FloatArray | None = None
    reasons: tuple[dict[str, str], ...] = ()
    sources: tuple[str, ...] = ()
    outcomes: OutcomeArray | None = None

    def __post_init__(self) -> None:
        objectives = tuple(self.objectives)
        if len(set(objectives)) != len(objectives):
            dup = sorted({o for o in objectives if objectives.count(o) > 1})
            raise ValueError(f"RewardBatch has duplicate objective names: {dup}")
        values = _as_matrix(self.values, None, len(objectives), "values")
        n = values.shape[0]
        std = None if self.std is None else _as_matrix(self.std, n, len(objectives), "std")
        reasons = tuple(self.reasons) if self.reasons else tuple({} for _ in range(n))
        if len(reasons) != n:
            raise ValueError(f"RewardBatch.reasons has {len(reasons)} entries for {n} samples")
        sources = tuple(self.sources) if self.sources else objectives
        if len(sources) != len(objectives):
            raise ValueError("RewardBatch.sources must name one source per objective")
        object.__setattr__(self, "objectives", objectives)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "std", std)
        if self.outcomes is None:
            outcomes = np.where(np.isnan(values), Outcome.UNSCORABLE, Outcome.VALUE).astype(np.int8)
        else:
            outcomes = np.asarray(self.outcomes, dtype=np.int8)
            if outcomes.shape != values.shape:
                raise ValueError(
                    f"RewardBatch.outcomes has shape {outcomes.shape}, expected {values.shape}"
                )
        object.__setattr__(self, "reasons", reasons)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "outcomes", outcomes)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def k(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return self.n

    def index(self, objective: str) -> int:
        try:
            return self.objectives.index(objective)
        except ValueError:
            raise KeyError(
                f"unknown objective {objective!r}; this batch has {list(self.objectives)}"
            ) from None

    def column(self, objective: str) -> FloatArray:
        """The values of one objective, shape (n,)."""
        return self.values[:, self.index(objective)]

    def __getitem__(self, objective: str) -> FloatArray:
        return self.column(objective)

    @property
    def not_applicable(self) -> npt.NDArray[np.bool_]:
        """Mask (n × k) of cells routed away by ``when:``."""
        return self._is(Outcome.NOT_APPLICABLE)

    @property
    def failed(self) -> npt.NDArray[np.bool_]:
        """Mask (n × k) of failed checks (the cell holds the failing value)."""
        return self._is(Outcome.FAILED)

    @property
    def unscorable(self) -> npt.NDArray[np.bool_]:
        """Mask (n × k) of cells the machinery could not score (NaN)."""
        return self._is(Outcome.UNSCORABLE)

    def _is(self, outcome: Outcome) -> npt.NDArray[np.bool_]:
        assert self.outcomes is not None  # set by __post_init__
        mask: npt.NDArray[np.bool_] = self.outcomes == outcome
        return mask

    @property
    def _outcomes(self) -> OutcomeArray:
        assert self.outcomes is not None  # set by __post_init__
        return self.outcomes

    def reason(self, row: int, col: int) -> str | None:
        """The reason recorded for cell (row, col), if any."""
        return self.reasons[row].get(self.sources[col])

    def select(self, rows: Sequence[int] | npt.NDArray[np.intp]) -> RewardBatch:
        """The sub-batch of the given sample rows."""
        idx = np.asarray(rows, dtype=np.intp)
        assert self.outcomes is not None
        return RewardBatch(
            values=self.values[idx],
            objectives=self.objectives,
            std=None if self.std is None else self.std[idx],
            reasons=tuple(self.reasons[i] for i in idx),
            sources=self.sources,
            outcomes=self.outcomes[idx],
        )

    def columns(self, idx: Sequence[int]) -> RewardBatch:
        """The batch restricted to (or reordered by) the given objective columns."""
        cols = list(idx)
        assert self.outcomes is not None
        return RewardBatch(
            self.values[:, cols],
            tuple(self.objectives[j] for j in cols),
            None if self.std is None else self.std[:, cols],
            self.reasons,
            tuple(self.sources[j] for j in cols),
            self.outcomes[:, cols],
        )

    def with_values(self, values: FloatArray) -> RewardBatch:
        """The same batch with new values (e.g. after normalisation); outcomes are kept."""
        return RewardBatch(
            values, self.objectives, self.std, self.reasons, self.sources, self.outcomes
        )

    @classmethod
    def concat(cls, batches: Sequence[RewardBatch]) -> RewardBatch:
        """Join batches over the same samples side by side (one per source)."""
        if not batches:
            raise ValueError("RewardBatch.concat needs at least one batch")
        n = batches[0].n
        if any(b.n != n for b in batches):
            raise ValueError(f"cannot concat batches of sizes {[b.n for b in batches]}")
        values = np.concatenate([b.values for b in batches], axis=1)
        std = None
        if any(b.std is not None for b in batches):
            std = np.concatenate(
                [b.std if b.std is not None else np.full_like(b.values, np.nan) for b in batches],
                axis=1,
            )
        reasons = tuple({k: v for b in batches for k, v in b.reasons[i].items()} for i in range(n))
        outcomes = np.concatenate([b._outcomes for b in batches], axis=1)
        return cls(
            values=values,
            objectives=tuple(o for b in batches for o in b.objectives),
            std=std,
            reasons=reasons,
            sources=tuple(s for b in batches for s in b.sources),
            outcomes=outcomes,
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per sample: ``{"rewards": {...}, "std": {...}, "reasons": {...},
        "outcomes": {...}}`` (see :func:`rewardhub.outcome.record`)."""
        return _outcome.records(
            self.objectives, self.values, self._outcomes, self.reasons, self.std
        )

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], objectives: Sequence[str] | None = None
    ) -> RewardBatch:
        """Inverse of :meth:`to_records` (also accepts records carrying more keys); the
        outcomes come from the records' ``outcomes`` (see
        :func:`rewardhub.outcome.parse_records`)."""
        p = _outcome.parse_records(list(records), objectives)
        return cls(p.values, p.objectives, p.std, p.reasons, outcomes=p.outcomes)


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """What a pipeline returns: the reward vector, the aggregated total and diagnostics.

    ``diagnostics`` holds the aggregator's attribution (e.g. ``contributions``,
    ``binding``, ``weights``) and the normalised values under ``normalized``.
    """

    vector: RewardBatch
    total: FloatArray
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_records(self, *, explain: bool = True) -> list[dict[str, Any]]:
        """One JSON-ready dict per sample with rewards, outcomes, reasons, total (with
        ``unscorable``, the reason, when the sample is) and, unless ``explain`` is False (which
        skips building it), the attribution.

        ``rewards`` are the sources' values as scored. When the total was computed from other
        values (a normaliser rescaled them, or ``on_abstain: {fill: ...}`` filled a cell),
        the record also holds those values as ``normalized``; without that key the total was
        computed from ``rewards`` themselves."""
        recs = self.vector.to_records()
        per_sample = self.diagnostics.get("per_sample") if explain else None
        unscorable = self.diagnostics.get("unscorable", {})
        used = self.diagnostics.get("normalized")
        totals = self.total.tolist()
        differs: list[bool] = [False] * len(recs)
        if used is not None:  # one numpy pass: which rows' totals came from other values
            same = (used == self.vector.values) | (np.isnan(used) & np.isnan(self.vector.values))
            differs = (~same.all(axis=1) & ~np.isnan(self.total)).tolist()
        for i, rec in enumerate(recs):
            if differs[i]:
                assert used is not None
                rec["normalized"] = json_row(self.vector.objectives, used[i].tolist())
            rec["total"] = json_number(totals[i])
            if i in unscorable:
                rec["unscorable"] = unscorable[i]
            if per_sample is not None:
                rec["explain"] = per_sample[i]
        return recs
