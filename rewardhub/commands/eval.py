"""``rewardhub eval SPEC PAIRS``: how well a pipeline's objectives, sources and total agree
with preference pairs (see docs/evaluation.md).

numpy/scipy and rich load only when the command runs. No ``from __future__ import
annotations``: typer reads the annotations of the command defined inside the hook.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer
    from rich.table import Table


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("eval")
    def eval_cmd(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
        pairs: Annotated[
            str,
            typer.Argument(
                help="JSONL of {prompt, chosen, rejected, subset?, label?, user?}, a saved "
                "datasets directory, or hf:NAME (from the local Hugging Face cache)"
            ),
        ],
        split: Annotated[str | None, typer.Option(help="the dataset's split")] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="write the result as JSON")
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="print the result as JSON instead of tables")
        ] = False,
        cache: Annotated[
            Path | None,
            typer.Option(help="sqlite cache file (default: OUTPUT.cache.sqlite with -o)"),
        ] = None,
        chunk_size: Annotated[int, typer.Option(min=1, help="pairs scored at a time")] = 500,
        resamples: Annotated[
            int, typer.Option(min=100, help="bootstrap resamples for the 95% intervals")
        ] = 2000,
        seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
    ) -> None:
        """Evaluate a pipeline on preference pairs: accuracy per source, objective and total
        (with 95% intervals), per subset, coverage, correlations, agreement, calibration."""
        from rich.console import Console

        from rewardhub._console import err, fail
        from rewardhub._output import OutputError, check_directory
        from rewardhub._spec_file import load_pipeline
        from rewardhub.errors import RewardHubError
        from rewardhub.evaluate import evaluate, read_pairs
        from rewardhub.hub import Hub

        try:
            if output is not None:
                check_directory(output, "--output")
            data = read_pairs(pairs, split)
            cache_path = cache or (
                output.with_name(output.name + ".cache.sqlite") if output else None
            )
            with load_pipeline(spec, Hub(), cache_path) as pipe, _Bar(len(data), err) as tick:
                result = evaluate(
                    pipe, data, chunk_size=chunk_size, resamples=resamples, seed=seed, on_chunk=tick
                )
        except (RewardHubError, OutputError) as exc:
            raise fail(exc, 2) from None
        result.info.update({"spec": str(spec), "data": pairs, "resamples": resamples})
        doc = result.to_dict()
        if output is not None:
            try:
                output.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            except OSError as exc:
                raise fail(f"cannot write {str(output)!r}: {exc.strerror}") from None
        if as_json:
            typer.echo(json.dumps(doc, indent=1))
            return
        console = Console()
        for table in tables(doc):
            console.print(table)


class _Bar:
    """A progress bar over pairs on stderr (hidden when it is not a terminal)."""

    def __init__(self, total: int, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress(
            "evaluating",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.total = total

    def __enter__(self) -> Any:
        self.progress.__enter__()
        task = self.progress.add_task("pairs", total=self.total)
        return lambda done: self.progress.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _ci(lo_hi: list[Any]) -> str:
    lo, hi = lo_hi
    return "-" if lo is None else f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def tables(doc: dict[str, Any]) -> list["Table"]:
    """The rich tables of an eval result (as :meth:`EvalResult.to_dict` gives it)."""
    from rich.table import Table

    out = []
    acc = Table(
        title=f"pairwise accuracy % on {doc['pairs']} pairs (ties count ½; 'all' counts "
        "unscored pairs as wrong) and coverage %"
    )
    for col in (
        "column",
        "scored",
        "95% CI",
        "all",
        "95% CI",
        "n/a",
        "failed",
        "unscorable",
    ):
        acc.add_column(col, justify="left" if col == "column" else "right")
    for name, a in doc["accuracy"].items():
        cov = doc["coverage"][name]
        acc.add_row(
            name,
            _pct(a["accuracy_scored"]),
            _ci(a["ci_scored"]),
            _pct(a["accuracy_all"]),
            _ci(a["ci_all"]),
            _pct(cov["not_applicable"]),
            _pct(cov["failed"]),
            _pct(cov["unscorable"]),
        )
    out.append(acc)
    if doc["subsets"].get("total"):
        sub = Table(title="accuracy per subset (%, scored pairs)")
        sub.add_column("subset")
        names = list(doc["subsets"])
        for name in names:
            sub.add_column(name, justify="right")
        for s in doc["subsets"]["total"]:
            sub.add_row(s, *[_pct(doc["subsets"][n][s]["accuracy_scored"]) for n in names])
        out.append(sub)
    if doc["sections"]:
        sec = Table(title="RewardBench sections (%, all pairs)")
        sec.add_column("column")
        heads = list(next(iter(doc["sections"].values()))["all"])
        for h in heads:
            sec.add_column(h, justify="right")
        for name, v in doc["sections"].items():
            sec.add_row(name, *[_pct(v["all"].get(h)) for h in heads])
        out.append(sec)
    for key, title in (
        ("spearman", "Spearman correlation over completions"),
        ("agreement", "agreement on pairs"),
    ):
        m = Table(title=title)
        m.add_column("")
        for n in doc[key]["names"]:
            m.add_column(n, justify="right")
        for n, row in zip(doc[key]["names"], doc[key]["matrix"]):
            m.add_row(n, *["-" if x is None else f"{x:.2f}" for x in row])
        out.append(m)
    if doc["calibration"]:
        cal = Table(title="calibration (from the std of each side)")
        for col in ("column", "pairs", "ECE"):
            cal.add_column(col, justify="left" if col == "column" else "right")
        for name, c in doc["calibration"].items():
            cal.add_row(name, str(c["n"]), "-" if c["ece"] is None else f"{c['ece']:.3f}")
        out.append(cal)
    return out
