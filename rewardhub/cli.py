"""The ``rewardhub`` command line (typer + rich)."""

from __future__ import annotations

import inspect
import itertools
import json
import math
import os
import sqlite3
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rewardhub._console import err
from rewardhub._console import fail as _fail
from rewardhub._console import say as _say
from rewardhub._jsonl import MAX_LINE_BYTES, BadLine, encode_line, parse_object, read_lines
from rewardhub._output import LockedOutput, OutputError, check_directory, prepare_cache
from rewardhub.adapters.trl import REFERENCE_COLUMNS
from rewardhub.aggregate.attribution import binding_counts
from rewardhub.errors import InputError, RewardHubError
from rewardhub.hub import Hub, PluginInfo
from rewardhub.outcome import KINDS, Tally
from rewardhub.pipeline import Pipeline
from rewardhub.schema import pipeline_schema
from rewardhub.spec import check_weight, read_spec_file
from rewardhub.types import Sample, ScoreResult


class RunSummary:
    """Per-objective count, mean, spread, min and max of a run, merged chunk by chunk (Chan et
    al.'s pairwise update), so a run of any length keeps O(objectives) numbers."""

    def __init__(self) -> None:
        self.objectives: tuple[str, ...] = ()
        self.rows = 0
        self.binding: Counter[str] = Counter()
        self._cols: dict[str, list[float]] = {}  # name → [count, mean, M2, min, max]
        self.kinds = Tally()  # not applicable / failed / unscorable cells per objective

    def add(self, result: ScoreResult) -> None:
        vector = result.vector
        if not self.objectives:
            self.objectives = vector.objectives
        self.rows += vector.n
        self.kinds.add(vector.objectives, np.asarray(vector.outcomes))
        self.binding.update(_binding(result.diagnostics))
        for j, name in enumerate(vector.objectives):
            self._merge(name, vector.values[:, j])
        self._merge("total", np.asarray(result.total, dtype=np.float64))

    def add_records(self, objectives: tuple[str, ...], records: list[dict[str, Any]]) -> None:
        """Like :meth:`add`, from records as ``ScoreResult.to_records`` writes them."""
        if not records:
            return
        if not self.objectives:
            self.objectives = objectives
        self.rows += len(records)
        self.kinds.add_records(objectives, records)
        self.binding.update(_binding({"per_sample": [r.get("explain") for r in records]}))
        for name in objectives:
            self._merge(name, _column([r["rewards"].get(name) for r in records]))
        self._merge("total", _column([r.get("total") for r in records]))

    def _merge(self, name: str, col: np.ndarray) -> None:
        present = col[~np.isnan(col)]
        if not present.size:
            self._cols.setdefault(name, [0.0, 0.0, 0.0, math.inf, -math.inf])
            return
        nb, mb = float(present.size), float(present.mean())
        m2b = float(((present - mb) ** 2).sum())
        na, ma, m2a, lo, hi = self._cols.get(name, [0.0, 0.0, 0.0, math.inf, -math.inf])
        n = na + nb
        delta = mb - ma
        self._cols[name] = [
            n,
            ma + delta * nb / n,
            m2a + m2b + delta * delta * na * nb / n,
            min(lo, float(present.min())),
            max(hi, float(present.max())),
        ]

    def stats(self, name: str) -> tuple[int, float, float, float, float]:
        """(values present, mean, population std, min, max) of one objective or ``total``."""
        n, mean, m2, lo, hi = self._cols.get(name, [0.0, 0.0, 0.0, math.inf, -math.inf])
        return int(n), mean, math.sqrt(m2 / n) if n else math.nan, lo, hi

    def table(self) -> Table:
        """Per-objective mean, std, min, max, the rate of each outcome that is not a value (not
        applicable, failed, unscorable; for the total: no number) and how often it was
        binding."""
        table = Table(title="rewards per objective")
        kinds = ("n/a", "failed", "unscorable")
        for col in ("objective", "mean", "std", "min", "max", *kinds, "binding"):
            table.add_column(col, justify="left" if col == "objective" else "right")
        rows = max(self.rows, 1)
        for name in (*self.objectives, "total"):
            n, mean, std, lo, hi = self.stats(name)
            cells = [_number(x, lo, hi) for x in (mean, std, lo, hi)] if n else ["-"] * 4
            bind = f"{self.binding[name] / rows:.1%}" if self.binding and name != "total" else ""
            label = "[bold]total[/]" if name == "total" else escape(name)
            if name == "total":
                rates = ["", "", f"{1 - n / rows:.1%}"]
            else:
                rates = [f"{self.kinds.get(kind, name) / rows:.1%}" for kind in KINDS]
            table.add_row(label, *cells, *rates, bind)
        return table


def _number(x: float, lo: float, hi: float) -> str:
    """``x`` to 4 significant digits; rounding noise next to the column's scale (a mean of
    -1.586e-16 over values of order 1) shows as 0."""
    scale = max(abs(lo), abs(hi))
    return f"{0.0 if abs(x) <= 1e-12 * scale else x:.4g}"


def _column(values: list[Any]) -> np.ndarray:
    """JSON numbers as float64, null as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _binding(diagnostics: dict[str, Any]) -> Counter[str]:
    per = diagnostics.get("per_sample")
    if per is None:
        return Counter()
    if isinstance(per, list):  # records read back: explanations may be missing or odd
        per = [item for item in per if isinstance(item, dict)]
    return Counter(binding_counts(per))


def _parse_weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise _fail(
                f"--weights: {part!r} is not name=number (e.g. --weights helpful=2,harmless=1)"
            ) from None
        if not sep:
            raise _fail(f"--weights: {part!r} is not name=number")
        try:
            check_weight(out[name.strip()], f"--weights {name.strip()}")
        except ValueError as exc:
            raise _fail(exc) from None
    return out


def _load_pipeline(
    spec: Path,
    hub: Hub,
    cache_path: Path | None,
    memory_items: int | None = None,
    cache_cheap: bool = False,
) -> Pipeline:
    data = read_spec_file(spec)
    cache_spec = data.get("cache", {})
    if cache_path is not None and isinstance(cache_spec, dict):  # else validation reports it
        cache_spec = {**cache_spec, "path": str(cache_path)}
        if cache_cheap:
            cache_spec["cheap_sources"] = True
        current = cache_spec.get("memory_items", memory_items)
        if memory_items is not None and isinstance(current, int):
            cache_spec["memory_items"] = min(current, memory_items)
        data["cache"] = cache_spec
    from rewardhub.spec import base_dir

    token = base_dir.set(spec.resolve().parent)
    try:
        return Pipeline(data, hub=hub)
    finally:
        base_dir.reset(token)


def _spec_fail(spec: Path, exc: RewardHubError) -> typer.Exit:
    text = str(exc)
    return _fail(text if text.startswith(str(spec)) else f"{spec}: {text}")


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


class _Stop(Exception):
    """Stop the run with a message; the lines already written stay in the partial file."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class _StreamOptions:
    weights: dict[str, float] | None
    chunk_size: int
    explain: bool
    skip_invalid: bool
    max_line_bytes: int
    reference_fields: tuple[str, ...] = REFERENCE_COLUMNS


def _stream(
    pipe: Pipeline, input: Path, out: LockedOutput, summary: RunSummary, opts: _StreamOptions
) -> None:
    """Read, score and write ``input`` chunk by chunk, in order."""
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
        if out.kept:
            done = _skip_written(lines, out, input, pipe.objectives, summary)
            progress.update(task, advance=done, lines=out.lines)
        while chunk := list(itertools.islice(lines, opts.chunk_size)):
            samples: list[Sample] = []
            items = _checked_lines(chunk, input, opts, samples)
            result = None
            if samples:
                try:
                    result = pipe.score(samples, weights=opts.weights)
                except RewardHubError as exc:
                    raise _Stop(str(exc)) from None
                summary.add(result)
            records = result.to_records(explain=opts.explain) if result is not None else []
            out.write(_encode_chunk(items, records, out, opts.explain), len(items))
            out.flush()
            progress.update(task, advance=sum(used for _, _, used in chunk), lines=out.lines)


def _skip_written(
    lines: Iterator[tuple[int, bytes | None, int]],
    out: LockedOutput,
    input: Path,
    objectives: tuple[str, ...],
    summary: RunSummary,
) -> int:
    """``--resume``: pass over the input lines an interrupted run already wrote (one output
    line per non-blank input line), adding their records to the summary; never recompute
    them. Returns the bytes passed over. The last kept line must describe the same input
    line, or the run stops: the partial output then belongs to another input."""
    used = 0
    seen = 0
    last: tuple[int, bytes | None] | None = None
    for number, raw, size in lines:
        used += size
        if raw is not None and not raw.strip():
            continue
        seen += 1
        last = (number, raw)
        if seen == out.kept:
            break
    if seen < out.kept:
        raise _Stop(
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
        raise _Stop(
            f"{out.partial}: its last line does not match line {last[0]} of {input}, so it "
            "belongs to another input; run without --resume to start afresh"
        )
    return used


def _score_on_ray(spec: Path, input: Path, output: Path, opts: _StreamOptions, hub: Hub) -> None:
    """``score --ray``: the lines are read and checked here as without ``--ray`` (the same
    rejections), scored on Ray Data actors, and written in input order, with the summary."""
    from rewardhub.distributed import score_samples

    out = LockedOutput(output)
    try:
        out.open()
    except OutputError as exc:
        raise _fail(exc) from None
    try:
        samples: list[Sample] = []
        with input.open("rb") as fh:
            items = _checked_lines(read_lines(fh, opts.max_line_bytes), input, opts, samples)
        with _load_pipeline(spec, hub, None) as pipe:
            objectives = pipe.objectives
            records = score_samples(samples, pipe)
            summary = RunSummary()
            for start in range(0, len(items), opts.chunk_size):
                chunk = items[start : start + opts.chunk_size]
                recs = list(itertools.islice(records, sum(isinstance(i, dict) for _, i in chunk)))
                summary.add_records(objectives, recs)
                out.write(_encode_chunk(chunk, recs, out, opts.explain), len(chunk))
                out.flush()
    except RewardHubError as exc:
        out.release()
        raise _spec_fail(spec, exc) from None
    except _Stop as stop:
        out.release()
        raise _fail(stop.message, stop.code) from None
    except BaseException:
        out.flush()
        out.release()
        raise
    _finish_output(out, summary)
    _say("", f"{summary.rows} scored on Ray → {output}")


def _checked_lines(
    lines: Iterable[tuple[int, bytes | None, int]],
    input: Path,
    opts: _StreamOptions,
    samples: list[Sample],
) -> list[tuple[int, dict[str, Any] | BadLine]]:
    """``(line number, fields or why rejected)`` for the non-blank lines, their samples
    appended to ``samples``; a rejected line stops the run unless ``--skip-invalid``."""
    items: list[tuple[int, dict[str, Any] | BadLine]] = []
    for number, raw, _ in lines:
        if raw is not None and not raw.strip():
            continue  # blank lines are not samples
        item = _sample_or_reject(
            parse_object(raw, opts.max_line_bytes), raw, samples, opts.reference_fields
        )
        if isinstance(item, BadLine) and not opts.skip_invalid:
            raise _Stop(
                f"{input}: line {number}: {item.reason} "
                "(use --skip-invalid to set such lines aside)"
            )
        items.append((number, item))
    return items


def _finish_output(out: LockedOutput, summary: RunSummary) -> None:
    """Put the finished output in place, then report what was set aside and the summary."""
    out.commit()
    out.release()
    if out.side_lines:
        _say("[yellow]note:[/]", f"{out.side_lines} malformed line(s) set aside in {out.side}")
    if summary.rows:
        Console().print(summary.table())


def _sample_or_reject(
    parsed: dict[str, Any] | BadLine,
    raw: bytes | None,
    samples: list[Sample],
    reference_fields: tuple[str, ...] = REFERENCE_COLUMNS,
) -> dict[str, Any] | BadLine:
    """The line's fields to write back (a sample appended to ``samples``), or why not. The
    first of ``reference_fields`` the line has is the sample's reference."""
    if isinstance(parsed, BadLine):
        return parsed
    obj = {k: v for k, v in parsed.items() if k not in STALE_FIELDS}
    ref = next((f for f in reference_fields if obj.get(f) is not None), None)
    fields = obj if ref in (None, "reference") else {**obj, "reference": obj[ref]}
    try:
        samples.append(Sample.from_dict(fields))
    except (InputError, TypeError, ValueError) as exc:
        return BadLine(str(exc), raw.decode("utf-8") if raw is not None else None)
    return obj


def _encode_chunk(
    items: list[tuple[int, dict[str, Any] | BadLine]],
    records: list[dict[str, Any]],
    out: LockedOutput,
    explain: bool,
) -> bytes:
    """The chunk's output lines, in input order (``records``: one per sample, in order);
    rejects also go to the side file."""
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
        out.write_side(encode_line({"line": number, "rejected": item.reason, "text": item.text}))
    return bytes(buf)


def build_app(hub: Hub | None = None) -> typer.Typer:
    """The typer app, with plugin commands added through ``register_commands``."""
    app = typer.Typer(
        name="rewardhub",
        help="A plugin-based hub of reward sources and judges for multi-objective alignment.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    state: dict[str, Hub] = {}

    @app.callback()
    def _root(
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                is_eager=True,
                callback=_print_version,
                help="print rewardhub's version and exit",
            ),
        ] = False,
    ) -> None:
        """A plugin-based hub of reward sources and judges for multi-objective alignment."""

    def get_hub() -> Hub:
        if "hub" not in state:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                state["hub"] = hub if hub is not None else Hub()
            for w in caught:
                _say("[yellow]warning:[/]", w.message)
        return state["hub"]

    @app.command("plugins")
    def plugins_cmd(
        as_json: Annotated[
            bool, typer.Option("--json", help="print JSON instead of a table")
        ] = False,
    ) -> None:
        """List plugins and every source, aggregator, normalizer and exploit class they provide."""
        h = get_hub()
        infos = h.plugins()
        registries: list[tuple[str, Any]] = [
            ("source", h.sources),
            ("aggregator", h.aggregators),
            ("normalizer", h.normalizers),
            ("exploit", h.exploits),
        ]
        if as_json:  # for tools: each plugin, and each type it provides with its summary
            out = [
                {
                    **vars(i),
                    "label": _plugin_label(i),
                    "types": [
                        {"kind": kind, "name": name, "summary": _summary(cls)}
                        for kind, registry in registries
                        for name, cls in registry.items()
                        if registry.owner(name) == i.name
                    ],
                }
                for i in infos
            ]
            typer.echo(json.dumps(out, indent=2))
            return
        table = Table(title="rewardhub plugins")
        for col in ("kind", "name", "plugin", "description"):
            table.add_column(col)
        labels = {i.name: _plugin_label(i) for i in infos}
        for kind, registry in registries:
            for name, cls in registry.items():
                owner = registry.owner(name)
                table.add_row(  # text, not markup: "[min, max]" must print as written
                    kind, escape(name), escape(labels.get(owner, owner)), escape(_summary(cls))
                )
        Console().print(table)
        for i in infos:
            if i.error:
                _say(f"[red]broken plugin {escape(labels[i.name])}:[/]", i.error)

    @app.command("schema")
    def schema_cmd(
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="write to a file")
        ] = None,
    ) -> None:
        """Print the JSON Schema of a pipeline spec, including every registered config."""
        text = json.dumps(pipeline_schema(get_hub()), indent=2, sort_keys=True) + "\n"
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            check_directory(output, "--output")
            output.write_text(text, encoding="utf-8")
        except OutputError as exc:
            raise _fail(exc) from None
        except OSError as exc:
            raise _fail(f"cannot write {str(output)!r}: {exc.strerror}") from None

    @app.command("validate")
    def validate_cmd(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
    ) -> None:
        """Check a spec: structure, source types and every source's config; every problem
        found is reported in one run."""
        from rewardhub.validate import spec_problems

        try:
            problems = spec_problems(read_spec_file(spec), get_hub())
            if len(problems) > 1:
                listed = "\n  ".join(str(p) for p in problems)
                raise _fail(f"{spec}: {len(problems)} problems:\n  {listed}")
            if problems:
                raise problems[0]
            with _load_pipeline(spec, get_hub(), None) as pipe:
                typer.echo(
                    f"{spec}: ok — {len(pipe.engine.sources)} source(s), objectives "
                    f"{', '.join(pipe.objectives)}, aggregate {pipe.aggregator.method}"
                )
                for o in pipe.spec.objective_specs or []:  # what each declared objective means
                    if o.description or o.bounds:
                        bounds = f" [{o.bounds[0]:g}, {o.bounds[1]:g}]" if o.bounds else ""
                        typer.echo(f"  {o.name}{bounds}: {o.description}".rstrip(": "))
        except RewardHubError as exc:
            raise _spec_fail(spec, exc) from None

    @app.command("score")
    def score_cmd(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
        input: Annotated[
            Path, typer.Argument(help="JSONL of {prompt, completion, reference?, metadata?}")
        ],
        output: Annotated[
            Path, typer.Option("--output", "-o", help="scored JSONL, one line per input line")
        ],
        resume: Annotated[
            bool,
            typer.Option(
                help="finish an interrupted run: keep the lines in OUTPUT.partial and reuse "
                "the default cache"
            ),
        ] = False,
        skip_invalid: Annotated[
            bool,
            typer.Option(help="write malformed lines to OUTPUT.rejects.jsonl instead of stopping"),
        ] = False,
        aggregate: Annotated[
            str | None, typer.Option(help="aggregation method to use instead of the spec's")
        ] = None,
        weights: Annotated[
            str | None, typer.Option(help="per-objective weights, e.g. a=2,b=1")
        ] = None,
        chunk_size: Annotated[
            int, typer.Option(min=1, help="lines read, scored and written at a time")
        ] = 1000,
        explain: Annotated[
            bool, typer.Option(help="add each total's attribution to the output")
        ] = False,
        cache: Annotated[
            Path | None,
            typer.Option(
                help="sqlite cache file, kept between runs (default: OUTPUT.cache.sqlite)"
            ),
        ] = None,
        fresh_cache: Annotated[
            bool,
            typer.Option(
                help="empty the cache before scoring: a --cache you name is otherwise kept; "
                "the default cache is emptied on every run without --resume"
            ),
        ] = False,
        max_line_bytes: Annotated[
            int, typer.Option(min=1, help="longer input lines are rejected")
        ] = MAX_LINE_BYTES,
        cache_cheap: Annotated[
            bool,
            typer.Option(
                help="keep cheap sources' results (rules) in the disk cache too; by default "
                "they are recomputed, which is faster than a look-up"
            ),
        ] = False,
        ray: Annotated[
            bool, typer.Option("--ray", help="score on Ray Data actors (extra 'ray')")
        ] = False,
        reference_field: Annotated[
            list[str] | None,
            typer.Option(
                help="input field holding the reference (ground truth); repeatable, the first "
                f"present wins [default: {', '.join(REFERENCE_COLUMNS)}]",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Score a JSONL file with a pipeline and print a summary per objective.

        Lines are read, scored and written chunk by chunk, in input order, so memory stays flat
        and the lines done so far are in OUTPUT.partial if the run stops.
        """
        if not input.is_file():
            raise _fail(f"input file {str(input)!r} does not exist or is not a file")
        if resume and fresh_cache:
            raise _fail("--resume reuses the cache and --fresh-cache empties it: choose one")
        refs = tuple(reference_field) if reference_field else REFERENCE_COLUMNS
        if ray:
            from rewardhub._optional import require

            require("ray", "ray", "rewardhub score --ray")  # before any line is read
        if ray:  # the whole run on Ray Data (see rewardhub.distributed); no cache or resume
            given: dict[str, object] = {"--resume": resume, "--weights": weights}
            given |= {"--aggregate": aggregate, "--cache": cache, "--fresh-cache": fresh_cache}
            given["--cache-cheap"] = cache_cheap
            if clash := [name for name, value in given.items() if value]:
                raise _fail(f"{', '.join(clash)}: not available with --ray (drop it, or --ray)")
            opts = _StreamOptions(None, chunk_size, explain, skip_invalid, max_line_bytes, refs)
            _score_on_ray(spec, input, output, opts, get_hub())
            return
        w = _parse_weights(weights)
        # everything that can fail before the work fails here: paths, lock, cache, spec
        out = LockedOutput(output)
        cache_path = cache or output.with_name(output.name + ".cache.sqlite")
        try:
            out.open(resume=resume)
            # the default cache belongs to this output: a run without --resume starts it
            # afresh; a cache the user named is only emptied when asked (--fresh-cache)
            prepare_cache(cache_path, fresh=fresh_cache or (cache is None and not resume))
        except OutputError as exc:
            out.release()
            raise _fail(exc) from None
        try:
            # the disk cache keeps every result; in memory a few chunks' worth is enough
            pipe = _load_pipeline(
                spec, get_hub(), cache_path, memory_items=4 * chunk_size, cache_cheap=cache_cheap
            )
            if aggregate:
                pipe = pipe.with_aggregator(aggregate)
        except RewardHubError as exc:
            out.release()
            raise _spec_fail(spec, exc) from None
        except (sqlite3.Error, OSError) as exc:
            out.release()
            raise _fail(f"cannot open the cache {str(cache_path)!r}: {exc}") from None
        except BaseException:
            out.release()
            raise
        summary = RunSummary()
        try:
            with pipe:
                _stream(
                    pipe,
                    input,
                    out,
                    summary,
                    _StreamOptions(w, chunk_size, explain, skip_invalid, max_line_bytes, refs),
                )
                stats = pipe.engine.stats
        except _Stop as stop:
            out.flush()
            out.release()
            if out.lines:
                _say("[yellow]note:[/]", f"the {out.lines} line(s) before it are in {out.partial}")
            raise _fail(stop.message, stop.code) from None
        except KeyboardInterrupt:
            out.flush()
            out.release()
            _say(
                "[yellow]interrupted:[/]",
                f"{out.lines} line(s) written to {out.partial} (in input order); run the same "
                "command with --resume to finish, reusing every result already computed",
            )
            raise typer.Exit(130) from None
        except BaseException:
            out.flush()
            out.release()
            raise
        _finish_output(out, summary)
        cached = stats.memory_hits + stats.disk_hits
        kept = f"{out.kept} lines kept from the interrupted run, " if out.kept else ""
        _say(
            "",
            f"{summary.rows} scored → {output} ({kept}{cached} cached results reused, "
            f"{stats.computed} computed)",
        )

    get_hub().call_register_commands(app)
    return app


def _print_version(value: bool) -> None:
    if value:
        from rewardhub import __version__

        typer.echo(f"rewardhub {__version__}")
        raise typer.Exit()


def _summary(cls: type[Any]) -> str:
    """A registered class's one-line description: ``summary``, ``description`` (exploit
    classes) or its docstring's first line."""
    text = getattr(cls, "summary", "") or getattr(cls, "description", "") or inspect.getdoc(cls)
    text = text or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def _plugin_label(info: PluginInfo) -> str:
    if info.builtin:
        return "built-in"
    if info.distribution:
        return f"{info.distribution} {info.version or ''}".strip()
    return info.name


def main() -> None:
    """Console-script entry point."""
    code: int | str | None = 0
    try:
        build_app()()
    except SystemExit as exc:  # click ends every command this way
        code = exc.code
    except RewardHubError as exc:
        _fail(exc)
        code = 1
    _exit_without_stragglers(code)
    sys.exit(code)


def _exit_without_stragglers(code: int | str | None) -> None:
    """Exit now if a thread is still running: a source call abandoned at its time-out (or at
    Ctrl-C) would otherwise hold the process until it returns, as Python joins such threads at
    exit. The output is written and closed by now; nothing is lost."""
    if any(
        t is not threading.main_thread() and t.is_alive() and not t.daemon
        for t in threading.enumerate()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
