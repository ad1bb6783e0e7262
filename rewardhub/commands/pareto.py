"""``rewardhub pareto SCORED.jsonl``: the Pareto front of a scored file, its ranks, its
hypervolume, and a plot of the points with the front highlighted.

typer, rich and matplotlib load only when the command runs (this module is a built-in plugin,
imported whenever a Hub is built). No ``from __future__ import annotations`` here: typer reads
the annotations of the command defined inside the hook.
"""

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np

from rewardhub.errors import InputError, RewardHubError
from rewardhub.hookspecs import hookimpl
from rewardhub.types import FloatArray, json_row

if TYPE_CHECKING:
    import typer


def read_scored(
    path: Path, objectives: Sequence[str] | None = None
) -> tuple[FloatArray, list[str], list[int]]:
    """(values n × k, objective names, 1-based line numbers) from ``rewardhub score`` output.

    Each line needs a ``rewards`` object; ``null`` (abstained) becomes NaN; lines without
    rewards (rejected inputs) are skipped.
    """
    from rewardhub._jsonl import read_objects

    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for lineno, obj in read_objects(path):
        rewards = obj.get("rewards")
        if not isinstance(rewards, dict):
            continue
        rows.append(rewards)
        lines.append(lineno)
    if not rows:
        raise InputError(f"{path} has no scored lines (objects with a 'rewards' field)")
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    names = list(objectives) if objectives else list(seen)
    unknown = [o for o in names if o not in seen]
    if unknown:
        raise InputError(f"{path}: unknown objective(s) {unknown}; the file has {list(seen)}")
    values = np.full((len(rows), len(names)), math.nan)
    for i, r in enumerate(rows):
        for j, o in enumerate(names):
            x = r.get(o)
            if x is None:
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise InputError(
                    f"{path}: rewards.{o} is {json.dumps(x)[:40]}, not a number", lines[i]
                )
            values[i, j] = x
    return values, names, lines


def default_ref(values: FloatArray) -> FloatArray:
    """Reference point: each objective's minimum minus 10 % of its range (1 if constant), so
    that every scored point adds volume."""
    present = ~np.isnan(values)
    lo = np.where(present, values, np.inf).min(axis=0)
    hi = np.where(present, values, -np.inf).max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(np.isfinite(lo), lo - 0.1 * span, 0.0)


def missing_note(values: FloatArray, names: Sequence[str]) -> str:
    """Why the hypervolume leaves points out: those without a value for some objective."""
    gaps = np.isnan(values)
    if not gaps.any():
        return ""
    lacking = [
        f"{name} ({int(gaps[:, j].sum())})" for j, name in enumerate(names) if gaps[:, j].any()
    ]
    kept = int((~gaps.any(axis=1)).sum())
    return (
        f"{int(gaps.any(axis=1).sum())} of {len(values)} points have no value for "
        f"{', '.join(lacking)} (routed away by `when:`, or abstained), so the hypervolume counts "
        f"only the {kept} complete point(s); choose objectives every point has with --objectives"
    )


def plot_front(values: FloatArray, names: Sequence[str], ranks: Any, path: Path) -> None:
    """Scatter of the points with the front highlighted: one panel in 2-D, every pair beyond."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = values.shape[1]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)] if k > 1 else [(0, 0)]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    front = ranks == 0
    for ax, (i, j) in zip(axes.flat, pairs):
        y = values[:, j] if k > 1 else np.zeros(len(values))
        ax.scatter(values[~front, i], y[~front], s=12, c="0.6", label="dominated")
        ax.scatter(values[front, i], y[front], s=24, c="tab:red", label="front")
        if k == 2:
            order = np.argsort(-values[front, i])
            ax.step(values[front, i][order], y[front][order], where="post", c="tab:red", lw=1)
        ax.set_xlabel(names[i])
        ax.set_ylabel(names[j] if k > 1 else "")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="best", fontsize="small")
    fig.suptitle(f"Pareto front ({int(front.sum())} of {len(values)} points)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("pareto")
    def pareto_cmd(
        scored: Annotated[Path, typer.Argument(help="JSONL written by `rewardhub score`")],
        objectives: Annotated[
            str | None, typer.Option(help="comma-separated objectives (default: all)")
        ] = None,
        ref: Annotated[
            str | None,
            typer.Option(help="hypervolume reference point, one number per objective"),
        ] = None,
        plot: Annotated[
            Path | None, typer.Option(help="write a PNG of the points with the front highlighted")
        ] = None,
        top: Annotated[int, typer.Option(min=0, help="front rows to print")] = 20,
        as_json: Annotated[
            bool, typer.Option("--json", help="print JSON instead of tables")
        ] = False,
    ) -> None:
        """Pareto front of a scored file: ranks, front points, hypervolume and a plot."""
        from rich.console import Console
        from rich.table import Table

        from rewardhub._console import fail, say
        from rewardhub._optional import require
        from rewardhub._output import check_directory
        from rewardhub.aggregate.pareto import crowding_distance, hypervolume, nondominated_sort

        try:
            if plot is not None:  # a missing extra is reported before the work, not after
                require("matplotlib", "plot", "rewardhub pareto --plot")
            if not scored.is_file():
                raise InputError(f"file {str(scored)!r} does not exist or is not a file")
            if plot is not None:
                check_directory(plot, "--plot")
            wanted = [o.strip() for o in objectives.split(",") if o.strip()] if objectives else None
            values, names, lines = read_scored(scored, wanted)
            if ref:
                try:
                    r = np.array([float(x) for x in ref.split(",")])
                except ValueError:
                    raise InputError(
                        f"--ref must be numbers separated by commas, got {ref!r}"
                    ) from None
                if r.shape[0] != len(names):
                    raise InputError(
                        f"--ref has {r.shape[0]} numbers for {len(names)} objectives {names}"
                    )
            else:
                r = default_ref(values)
            ranks = nondominated_sort(values)
            front = np.flatnonzero(ranks == 0)
            crowd = crowding_distance(values[front]) if front.size else np.zeros(0)
            hv = hypervolume(values, r)
        except RewardHubError as exc:
            raise fail(exc) from None
        counts = np.bincount(ranks)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "objectives": names,
                        "ref": r.tolist(),
                        "hypervolume": hv,
                        "front_sizes": counts.tolist(),
                        "ranks": dict(zip(map(str, lines), ranks.tolist())),
                        "front": [
                            {"line": lines[i], **json_row(names, values[i].tolist())} for i in front
                        ],
                    }
                )
            )
        else:
            out = Console()
            table = Table(title=f"Pareto front of {scored} ({front.size} of {len(values)} points)")
            table.add_column("line", justify="right")
            for o in names:
                table.add_column(o, justify="right")
            table.add_column("crowding", justify="right")
            order = np.argsort(
                -np.where(np.isinf(crowd), np.finfo(float).max, crowd), kind="stable"
            )
            for j in order[:top]:
                i = front[j]
                cells = ["—" if math.isnan(x) else f"{x:.4g}" for x in values[i]]
                c = "∞" if math.isinf(crowd[j]) else f"{crowd[j]:.3g}"
                table.add_row(str(lines[i]), *cells, c)
            out.print(table)
            if front.size > top:
                out.print(f"… {front.size - top} more on the front (use --top)")
            ranks_table = Table(title="points per front")
            ranks_table.add_column("front", justify="right")
            ranks_table.add_column("points", justify="right")
            for rank_i, c_i in enumerate(counts.tolist()):
                ranks_table.add_row(str(rank_i), str(c_i))
            out.print(ranks_table)
            out.print(f"hypervolume {hv:.6g} (reference point {', '.join(f'{x:.4g}' for x in r)})")
            if note := missing_note(values, names):
                say("[yellow]note:[/]", note)
        if plot is not None:
            try:
                plot_front(values, names, ranks, plot)
            except (OSError, ValueError) as exc:  # e.g. no space left, an unknown extension
                raise fail(f"cannot write the plot {str(plot)!r}: {exc}") from None
            say("", f"plot written to {plot}")
