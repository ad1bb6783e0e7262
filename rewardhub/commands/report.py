"""``rewardhub report [SCORED.jsonl] [--eval EVAL.json] [--curves CURVES.json] -o report.html``:
one self-contained HTML page of a scored file, an eval result and best-of-n curves.

No ``from __future__ import annotations``: typer reads the annotations of the command defined
inside the hook.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("report")
    def report_cmd(
        scored: Annotated[
            Path | None, typer.Argument(help="scored JSONL (rewardhub score's output)")
        ] = None,
        eval_json: Annotated[
            Path | None, typer.Option("--eval", help="an eval result (rewardhub eval -o)")
        ] = None,
        curves: Annotated[
            Path | None,
            typer.Option(help="best-of-n curves JSON (benchmarks/overoptimization.py)"),
        ] = None,
        output: Annotated[
            Path, typer.Option("--output", "-o", help="the HTML file to write")
        ] = Path("report.html"),
        title: Annotated[str, typer.Option(help="the page title")] = "rewardhub report",
        x: Annotated[str | None, typer.Option(help="Pareto plot: x objective")] = None,
        y: Annotated[str | None, typer.Option(help="Pareto plot: y objective")] = None,
    ) -> None:
        """Write an HTML report (inline SVG, works offline): distributions, correlations, the
        Pareto front, attribution, outcome rates, eval tables and best-of-n curves."""
        from rewardhub._console import fail, say
        from rewardhub._output import OutputError, check_directory
        from rewardhub.errors import InputError, RewardHubError
        from rewardhub.report.data import ScoredData, load_json
        from rewardhub.report.html import curves_section, eval_section, page, scored_section

        if scored is None and eval_json is None and curves is None:
            raise fail("give a scored file, --eval EVAL.json or --curves CURVES.json", 2)
        try:
            check_directory(output, "--output")
            sections = []
            if scored is not None:
                data = ScoredData.read(scored)
                for name, opt in (("--x", x), ("--y", y)):
                    if opt is not None and opt not in data.objectives:
                        raise InputError(
                            f"{name} {opt!r} is not an objective of {scored}: {data.objectives}"
                        )
                sections.append(scored_section(data, x, y))
            doc = load_json(eval_json, "eval result") if eval_json is not None else None
            if doc is not None:
                if "accuracy" not in doc or "pairs" not in doc:
                    raise InputError(
                        f"{eval_json}: not an eval result (make one with: rewardhub eval SPEC "
                        "PAIRS.jsonl -o EVAL.json)"
                    )
                sections.append(eval_section(doc))
            bon = load_json(curves, "curves")["curves"] if curves is not None else None
            bon = bon or (doc or {}).get("overoptimization")
            if bon:
                sections.append(curves_section(bon))
            output.write_text(page(title, sections), encoding="utf-8")
        except (RewardHubError, OutputError, KeyError) as exc:
            raise fail(exc, 2) from None
        except OSError as exc:
            raise fail(f"cannot write {str(output)!r}: {exc.strerror}") from None
        say("", f"report → {output}")
