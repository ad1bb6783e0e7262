"""The ``rewardhub`` command line (typer + rich)."""

from __future__ import annotations

import inspect
import json
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rewardhub._console import err
from rewardhub._console import fail as _fail
from rewardhub._console import say as _say
from rewardhub.errors import InputError, RewardHubError
from rewardhub.hub import Hub, PluginInfo
from rewardhub.pipeline import Pipeline
from rewardhub.schema import pipeline_schema
from rewardhub.spec import read_spec_file
from rewardhub.types import RewardBatch, Sample, ScoreResult, json_number


def read_jsonl(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | InputError]]:
    """Yield (line number, raw text, parsed object or the error) for each non-blank line."""
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.rstrip("\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield (
                    lineno,
                    text,
                    InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", lineno),
                )
                continue
            if not isinstance(obj, dict):
                yield (
                    lineno,
                    text,
                    InputError(f"expected a JSON object, got {type(obj).__name__}", lineno),
                )
                continue
            yield lineno, text, obj


def summary_table(result_vectors: RewardBatch, totals: np.ndarray, binding: Counter[str]) -> Table:
    """Per-objective mean, std, min, max and abstain rate (and how often it was binding)."""
    table = Table(title="rewards per objective")
    for col in ("objective", "mean", "std", "min", "max", "abstain", "binding"):
        table.add_column(col, justify="left" if col == "objective" else "right")
    n = max(result_vectors.n, 1)

    def row(name: str, col: np.ndarray, bind: str) -> None:
        present = col[~np.isnan(col)]
        stats = (
            [
                f"{present.mean():.4g}",
                f"{present.std():.4g}",
                f"{present.min():.4g}",
                f"{present.max():.4g}",
            ]
            if present.size
            else ["-"] * 4
        )
        table.add_row(name, *stats, f"{1 - present.size / n:.1%}", bind)

    for j, name in enumerate(result_vectors.objectives):
        row(name, result_vectors.values[:, j], f"{binding[name] / n:.1%}" if binding else "")
    row("[bold]total[/]", np.asarray(totals, dtype=np.float64), "")
    return table


def _binding(diagnostics: dict[str, Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in diagnostics.get("per_sample") or []:
        if isinstance(item, dict) and item.get("binding"):
            counts[str(item["binding"])] += 1
    return counts


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
    return out


def _load_pipeline(spec: Path, hub: Hub, cache_path: Path | None) -> Pipeline:
    data = read_spec_file(spec)
    if cache_path is not None:
        data.setdefault("cache", {})
        data["cache"] = {**data["cache"], "path": str(cache_path)}
    from rewardhub.spec import base_dir

    token = base_dir.set(spec.resolve().parent)
    try:
        return Pipeline(data, hub=hub)
    finally:
        base_dir.reset(token)


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
        """List plugins and every source, aggregator and normalizer they provide."""
        h = get_hub()
        infos = h.plugins()
        if as_json:
            typer.echo(json.dumps([vars(i) for i in infos], indent=2))
            return
        table = Table(title="rewardhub plugins")
        for col in ("kind", "name", "plugin", "description"):
            table.add_column(col)
        labels = {i.name: _plugin_label(i) for i in infos}
        for kind, registry in (
            ("source", h.sources),
            ("aggregator", h.aggregators),
            ("normalizer", h.normalizers),
        ):
            for name, cls in registry.items():
                owner = registry.owner(name)
                table.add_row(kind, name, labels.get(owner, owner), _summary(cls))
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
        else:
            output.write_text(text, encoding="utf-8")

    @app.command("validate")
    def validate_cmd(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
    ) -> None:
        """Check a spec: structure, source types and every source's config."""
        try:
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
            raise _fail(f"{spec}: {exc}") from None

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
            bool, typer.Option(help="reuse the disk cache of an interrupted run")
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
        chunk_size: Annotated[int, typer.Option(min=1, help="samples per scoring call")] = 512,
        explain: Annotated[
            bool, typer.Option(help="add each total's attribution to the output")
        ] = False,
        cache: Annotated[
            Path | None, typer.Option(help="sqlite cache file (default: OUTPUT.cache.sqlite)")
        ] = None,
    ) -> None:
        """Score a JSONL file with a pipeline and print a summary per objective."""
        if not input.exists():
            raise _fail(f"input file {str(input)!r} does not exist")
        records: list[tuple[int, dict[str, Any] | None, str]] = []
        samples: list[Sample] = []
        rejects: list[dict[str, Any]] = []
        for lineno, text, parsed in read_jsonl(input):
            try:
                if isinstance(parsed, InputError):
                    raise parsed
                samples.append(Sample.from_dict(parsed, line=lineno))
                records.append((lineno, parsed, text))
            except InputError as exc:
                if not skip_invalid:
                    raise _fail(
                        f"{input}: {exc} (use --skip-invalid to set such lines aside)"
                    ) from None
                rejects.append({"line": lineno, "error": str(exc), "text": text})
                records.append((lineno, None, str(exc)))
        cache_path = cache or output.with_name(output.name + ".cache.sqlite")
        if not resume:
            for suffix in ("", "-wal", "-shm"):
                Path(str(cache_path) + suffix).unlink(missing_ok=True)
        try:
            pipe = _load_pipeline(spec, get_hub(), cache_path)
            if aggregate:
                pipe = pipe.with_aggregator(aggregate)
        except RewardHubError as exc:
            raise _fail(f"{spec}: {exc}") from None
        w = _parse_weights(weights)
        results: list[ScoreResult] = []
        with pipe:
            progress = Progress(
                TextColumn("scoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=not samples,
            )
            with progress:
                task = progress.add_task("score", total=len(samples))
                for start in range(0, len(samples), chunk_size):
                    chunk = samples[start : start + chunk_size]
                    try:
                        results.append(pipe.score(chunk, weights=w))
                    except RewardHubError as exc:
                        raise _fail(str(exc)) from None
                    progress.advance(task, len(chunk))
            stats = pipe.engine.stats
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        scored = iter(r for res in results for r in _records(res, explain))
        # surrogateescape: bytes that were not UTF-8 in the input go back out unchanged
        with tmp.open("w", encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, obj, text in records:
                if obj is None:
                    out: dict[str, Any] = {"line": lineno, "rejected": text, "total": None}
                else:
                    out = {**obj, **next(scored)}
                fh.write(json.dumps(out, ensure_ascii=False, default=_json_default) + "\n")
        os.replace(tmp, output)
        if rejects:
            side = output.with_name(output.name + ".rejects.jsonl")
            side.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects),
                encoding="utf-8",
                errors="surrogateescape",
            )
            _say("[yellow]note:[/]", f"{len(rejects)} malformed line(s) set aside in {side}")
        if results:
            vector = RewardBatch(
                np.concatenate([r.vector.values for r in results]), results[0].vector.objectives
            )
            totals = np.concatenate([r.total for r in results])
            binding: Counter[str] = Counter()
            for r in results:
                binding.update(_binding(r.diagnostics))
            Console().print(summary_table(vector, totals, binding))
        cached = stats.memory_hits + stats.disk_hits
        _say(
            "",
            f"{len(samples)} scored → {output} ({cached} cached results reused, {stats.computed} computed)",
        )

    get_hub().call_register_commands(app)
    return app


def _summary(cls: type[Any]) -> str:
    """A registered class's one-line description: ``summary`` or its docstring's first line."""
    text = getattr(cls, "summary", "") or inspect.getdoc(cls) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def _plugin_label(info: PluginInfo) -> str:
    if info.builtin:
        return "built-in"
    if info.distribution:
        return f"{info.distribution} {info.version or ''}".strip()
    return info.name


def _records(result: ScoreResult, explain: bool) -> Iterator[dict[str, Any]]:
    for rec in result.to_records():
        if not explain:
            rec.pop("explain", None)
        yield rec


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        v = x.item()
        return json_number(v) if isinstance(v, float) else v
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def main() -> None:
    """Console-script entry point."""
    try:
        build_app()()
    except RewardHubError as exc:
        _fail(exc)
        sys.exit(1)
