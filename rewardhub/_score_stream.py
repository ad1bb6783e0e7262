"""``rewardhub score``'s loop: read a JSONL file, score it chunk by chunk, write in input order.

One chunk is ``chunk_size`` input lines, and everything a chunk needs (parsing, scoring,
encoding, its part of the summary) is :func:`score_chunk`, so the same chunk gives the same
bytes whether it is scored here or in a worker process (:mod:`rewardhub._score_pool`).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from rewardhub._console import err
from rewardhub._jsonl import BadLine, encode_line, parse_object, read_lines
from rewardhub._output import LockedOutput
from rewardhub.adapters.trl import REFERENCE_COLUMNS
from rewardhub.errors import InputError, RewardHubError
from rewardhub.pipeline import Pipeline
from rewardhub.run_summary import RunSummary
from rewardhub.types import Sample

#: Fields of an input line that describe a previous scoring run: dropped, so that the output
#: describes this run only (and they do not reach the sample's metadata or cache key).
STALE_FIELDS = frozenset(
    {
        "rewards",
        "normalized",
        "total",
        "std",
        "reasons",
        "outcomes",
        "unscorable",
        "explain",
        "errors",
    }
)

#: (1-based line number, raw line or None when over the byte limit, bytes consumed)
Line = tuple[int, bytes | None, int]


class Stop(Exception):
    """Stop the run with a message; the lines already written stay in the partial file."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class StreamOptions:
    weights: dict[str, float] | None
    chunk_size: int
    explain: bool
    skip_invalid: bool
    max_line_bytes: int
    reference_fields: tuple[str, ...] = REFERENCE_COLUMNS


@dataclass
class ChunkDone:
    """One chunk scored: its output bytes and lines, its rejects for the side file, its part
    of the summary, the bytes of input it consumed, or the message that stops the run."""

    data: bytes = b""
    lines: int = 0
    side: list[bytes] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)
    used: int = 0
    stop: str | None = None
    cached: int = 0
    """results the pipeline's caches gave back for this chunk"""
    computed: int = 0
    """results its sources computed for this chunk"""
    warnings: list[tuple[type[Warning], str]] = field(default_factory=list)
    """the warnings scoring it raised, shown by the process that writes it"""


def score_chunk(pipe: Pipeline, chunk: list[Line], input: Path, opts: StreamOptions) -> ChunkDone:
    """Parse, score and encode one chunk of input lines."""
    used = sum(size for _, _, size in chunk)
    samples: list[Sample] = []
    try:
        items = checked_lines(chunk, input, opts, samples)
    except Stop as stop:
        return ChunkDone(used=used, stop=stop.message)
    done = ChunkDone(used=used, lines=len(items))
    records: list[dict[str, Any]] = []
    if samples:
        stats = pipe.engine.stats
        cached, computed = stats.memory_hits + stats.disk_hits, stats.computed
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = pipe.score(samples, weights=opts.weights)
        except RewardHubError as exc:
            return ChunkDone(used=used, stop=str(exc))
        done.warnings = [(w.category, str(w.message)) for w in caught]
        done.cached = stats.memory_hits + stats.disk_hits - cached
        done.computed = stats.computed - computed
        done.summary.add(result)
        records = result.to_records(explain=opts.explain)
    done.data = encode_chunk(items, records, done.side, opts.explain)
    return done


def write_chunk(out: LockedOutput, done: ChunkDone, summary: RunSummary) -> None:
    """Write a scored chunk (or stop the run where it stops)."""
    for category, message in done.warnings:
        warnings.warn(message, category, stacklevel=2)
    if done.stop is not None:
        raise Stop(done.stop)
    for line in done.side:
        out.write_side(line)
    out.write(done.data, done.lines)
    out.flush()
    summary.merge(done.summary)


#: scores the chunks it is given, in order, writing each one as it is done
Scorer = Callable[[Iterator[list[Line]], Callable[[ChunkDone], None]], None]


def stream(
    pipe: Pipeline,
    input: Path,
    out: LockedOutput,
    summary: RunSummary,
    opts: StreamOptions,
    scorer: Scorer | None = None,
) -> tuple[int, int]:
    """Read, score and write ``input`` chunk by chunk, in order: here, or by ``scorer``.
    Returns the results the caches gave back and those the sources computed."""
    counts = [0, 0]
    size = input.stat().st_size
    progress = Progress(
        TextColumn("scoring"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TimeRemainingColumn(),
        console=err,
        disable=size == 0,
    )
    with progress, input.open("rb") as fh:
        task = progress.add_task("score", total=size, lines=0)
        lines = read_lines(fh, opts.max_line_bytes)
        first = 0
        if out.kept:
            done, passed = skip_written(lines, out, input, pipe.objectives, summary)
            progress.update(task, advance=done, lines=out.lines)
            # chunks start where the interrupted run's did: a spec comparing the lines of a
            # chunk (group normalisation, batch-relative aggregation) scores them alike
            first = -passed % opts.chunk_size

        def write(done: ChunkDone) -> None:
            write_chunk(out, done, summary)
            counts[0] += done.cached
            counts[1] += done.computed
            progress.update(task, advance=done.used, lines=out.lines)

        chunks = _chunks(lines, opts.chunk_size, first)
        if scorer is None:
            for chunk in chunks:
                write(score_chunk(pipe, chunk, input, opts))
        else:
            scorer(chunks, write)
    return counts[0], counts[1]


def _chunks(lines: Iterator[Line], size: int, first: int = 0) -> Iterator[list[Line]]:
    """Lists of ``size`` lines (the first of ``first`` lines, when given)."""
    if first and (chunk := list(itertools.islice(lines, first))):
        yield chunk
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


def skip_written(
    lines: Iterator[Line],
    out: LockedOutput,
    input: Path,
    objectives: tuple[str, ...],
    summary: RunSummary,
) -> tuple[int, int]:
    """``--resume``: pass over the input lines an interrupted run already wrote (one output
    line per non-blank input line), adding their records to the summary; never recompute
    them. Returns the bytes and the lines (blank ones included) passed over. The last kept line must describe the same input
    line, or the run stops: the partial output then belongs to another input."""
    used = 0
    seen = 0
    passed = 0
    last: tuple[int, bytes | None] | None = None
    for number, raw, size in lines:
        passed = number
        used += size
        if raw is not None and not raw.strip():
            continue
        seen += 1
        last = (number, raw)
        if seen == out.kept:
            break
    if seen < out.kept:
        raise Stop(
            f"{out.partial} holds {out.kept} lines but {input} has only {seen}: it belongs to "
            "another input; run without --resume to start afresh"
        )
    records: list[dict[str, Any]] = []
    written: dict[str, Any] | BadLine = BadLine("", None)
    with out.partial.open("rb") as fh:
        for _, raw, _ in read_lines(fh):
            written = parse_object(raw)
            if isinstance(written, dict) and "rewards" in written:
                records.append(written)
            if len(records) >= 1000:
                summary.add_records(objectives, records)
                records = []
    summary.add_records(objectives, records)
    assert last is not None
    given = parse_object(last[1])
    if isinstance(written, dict) and "rejected" in written:
        same = written.get("line") == last[0]
    else:
        same = (
            isinstance(written, dict)
            and isinstance(given, dict)
            and given.get("completion") == written.get("completion")
        )
    if not same:
        raise Stop(
            f"{out.partial}: its last line does not match line {last[0]} of {input}, so it "
            "belongs to another input; run without --resume to start afresh"
        )
    return used, passed


def checked_lines(
    lines: Iterable[Line],
    input: Path,
    opts: StreamOptions,
    samples: list[Sample],
) -> list[tuple[int, dict[str, Any] | BadLine]]:
    """``(line number, fields or why rejected)`` for the non-blank lines, their samples
    appended to ``samples``; a rejected line stops the run unless ``--skip-invalid``."""
    items: list[tuple[int, dict[str, Any] | BadLine]] = []
    for number, raw, _ in lines:
        if raw is not None and not raw.strip():
            continue  # blank lines are not samples
        item = sample_or_reject(
            parse_object(raw, opts.max_line_bytes), raw, samples, opts.reference_fields
        )
        if isinstance(item, BadLine) and not opts.skip_invalid:
            raise Stop(
                f"{input}: line {number}: {item.reason} "
                "(use --skip-invalid to set such lines aside)"
            )
        items.append((number, item))
    return items


def sample_or_reject(
    parsed: dict[str, Any] | BadLine,
    raw: bytes | None,
    samples: list[Sample],
    reference_fields: tuple[str, ...] = REFERENCE_COLUMNS,
) -> dict[str, Any] | BadLine:
    """The line's fields to write back (a sample appended to ``samples``), or why not. The
    first of ``reference_fields`` the line has is the sample's reference."""
    if isinstance(parsed, BadLine):
        return parsed
    # the common line holds no stale field and its reference (if any) under the first name:
    # no copy, no generator (this runs once per input line)
    obj = parsed if STALE_FIELDS.isdisjoint(parsed) else _fresh(parsed)
    fields = obj
    for name in reference_fields:
        if obj.get(name) is not None:
            if name != "reference":
                fields = {**obj, "reference": obj[name]}
            break
    try:
        samples.append(Sample.from_dict(fields))
    except (InputError, TypeError, ValueError) as exc:
        return BadLine(str(exc), raw.decode("utf-8") if raw is not None else None)
    return obj


def _fresh(parsed: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parsed.items() if k not in STALE_FIELDS}


def encode_chunk(
    items: list[tuple[int, dict[str, Any] | BadLine]],
    records: list[dict[str, Any]],
    side: list[bytes],
    explain: bool,
) -> bytes:
    """The chunk's output lines, in input order (``records``: one per sample, in order);
    each reject's line for the side file is appended to ``side``."""
    recs = iter(records)
    buf = bytearray()
    for number, item in items:
        if isinstance(item, dict):
            rec = next(recs)
            if not explain:
                rec.pop("explain", None)
            try:
                buf += encode_line({**item, **rec})
                continue
            except ValueError as exc:  # a source's output JSON cannot carry
                item = BadLine(f"the result cannot be written as JSON: {exc}", None)
        buf += encode_line({"line": number, "rejected": item.reason, "total": None})
        side.append(encode_line({"line": number, "rejected": item.reason, "text": item.text}))
    return bytes(buf)
