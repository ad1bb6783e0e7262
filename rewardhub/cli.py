"""The ``rewardhub`` command line (typer + rich)."""

from __future__ import annotations

import inspect
import itertools
import json
import os
import sqlite3
import sys
import threading
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rewardhub._console import fail as _fail
from rewardhub._console import say as _say
from rewardhub._jsonl import MAX_LINE_BYTES, read_lines
from rewardhub._output import LockedOutput, OutputError, check_directory, prepare_cache
from rewardhub._score_stream import (
    ChunkDone,
    Scorer,
    Stop,
    StreamOptions,
    checked_lines,
    encode_chunk,
    stream,
    write_chunk,
)
from rewardhub._spec_file import load_pipeline
from rewardhub.adapters.trl import REFERENCE_COLUMNS
from rewardhub.errors import RewardHubError
from rewardhub.hub import Hub, PluginInfo
from rewardhub.pipeline import Pipeline
from rewardhub.run_summary import RunSummary
from rewardhub.schema import pipeline_schema
from rewardhub.spec import check_weight, read_spec_file
from rewardhub.types import Sample

__all__ = ["RunSummary", "build_app", "main"]


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


def _spec_fail(spec: Path, exc: RewardHubError) -> typer.Exit:
    text = str(exc)
    return _fail(text if text.startswith(str(spec)) else f"{spec}: {text}")


def _score_on_ray(spec: Path, input: Path, output: Path, opts: StreamOptions, hub: Hub) -> None:
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
            items = checked_lines(read_lines(fh, opts.max_line_bytes), input, opts, samples)
        with load_pipeline(spec, hub, None) as pipe:
            objectives = pipe.objectives
            records = score_samples(samples, pipe)
            summary = RunSummary()
            for start in range(0, len(items), opts.chunk_size):
                chunk = items[start : start + opts.chunk_size]
                recs = list(itertools.islice(records, sum(isinstance(i, dict) for _, i in chunk)))
                done = ChunkDone(lines=len(chunk))
                done.summary.add_records(objectives, recs)
                done.data = encode_chunk(chunk, recs, done.side, opts.explain)
                write_chunk(out, done, summary)
    except RewardHubError as exc:
        out.release()
        raise _spec_fail(spec, exc) from None
    except Stop as stop:
        out.release()
        raise _fail(stop.message, stop.code) from None
    except BaseException:
        out.flush()
        out.release()
        raise
    _finish_output(out, summary)
    _say("", f"{summary.rows} scored on Ray → {output}")


def _finish_output(out: LockedOutput, summary: RunSummary) -> None:
    """Put the finished output in place, then report what was set aside and the summary."""
    out.commit()
    out.release()
    if out.side_lines:
        _say("[yellow]note:[/]", f"{out.side_lines} malformed line(s) set aside in {out.side}")
    if summary.rows:
        Console().print(summary.table())


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
            with load_pipeline(spec, get_hub(), None) as pipe:
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
        workers: Annotated[
            int,
            typer.Option(
                min=0,
                help="processes scoring chunks side by side, for specs of cheap sources "
                "(rules); 0: one per CPU (at most 8) when the input is 8 MiB or more, else 1",
            ),
        ] = 0,
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
            opts = StreamOptions(None, chunk_size, explain, skip_invalid, max_line_bytes, refs)
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
            pipe = load_pipeline(
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
        opts = StreamOptions(w, chunk_size, explain, skip_invalid, max_line_bytes, refs)
        try:
            with pipe:
                scorer = _pool_scorer(pipe, workers, input, (spec, cache_path, aggregate, opts))
                cached, computed = stream(pipe, input, out, summary, opts, scorer)
        except Stop as stop:
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
        kept = f"{out.kept} lines kept from the interrupted run, " if out.kept else ""
        _say(
            "",
            f"{summary.rows} scored → {output} ({kept}{cached} cached results reused, "
            f"{computed} computed)",
        )

    def _pool_scorer(
        pipe: Pipeline,
        workers: int,
        input: Path,
        job: tuple[Path, Path | None, str | None, StreamOptions],
    ) -> Scorer | None:
        """``--workers``: a scorer spreading chunks over processes (each building the pipeline
        from ``job``: the spec, cache, aggregator and options), or None for this process."""
        from rewardhub import _score_pool as pool

        wanted = workers or (
            pool.auto_workers() if input.stat().st_size >= pool.AUTO_MIN_BYTES else 1
        )
        if wanted < 2:
            return None
        why = "the command was given its own plugin hub" if hub is not None else None
        why = why or pool.why_not_parallel(pipe)
        if why is not None:
            if workers > 1:
                _say("[yellow]note:[/]", f"--workers {workers}: scoring in one process: {why}")
            return None
        spec, cache_path, aggregate, opts = job
        memory_items = 4 * opts.chunk_size  # as the command's own pipeline
        worker = pool.WorkerJob(spec, input, cache_path, memory_items, aggregate, opts)
        return pool.pool_scorer(worker, wanted, pipe)

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
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # a `score --workers` worker is re-importing the script that called main() without an
        # `if __name__ == "__main__":` guard: that import must not run the command again
        return
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
