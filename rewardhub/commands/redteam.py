"""``rewardhub redteam SPEC DATA.jsonl``: audit a reward spec against known reward hacks.

typer and rich load only when the command runs. No ``from __future__ import annotations``:
typer reads the annotations of the command defined inside the hook.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from rewardhub.errors import InputError
from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

    from rewardhub.redteam.exploit import Exploit
    from rewardhub.redteam.target import SpecHints, Target

#: the exit status when a class out-earns the wrong answer by more than --fail-on
GATE_FAILED = 3


def read_targets(path: Path, hints: "SpecHints", limit: int | None = None) -> list["Target"]:
    """The samples to attack, one JSON object a line (see :func:`build_target`)."""
    from rewardhub._jsonl import read_objects
    from rewardhub.redteam.target import build_target

    targets = []
    for number, obj in read_objects(path):
        try:
            targets.append(build_target(obj, hints, number))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        if limit is not None and len(targets) >= limit:
            break
    if not targets:
        raise InputError(f"{path} has no samples")
    return targets


def choose_exploits(registry: Any, only: str | None) -> list["Exploit"]:
    """Instances of the registered classes, or of those ``only`` names (class names or
    families, comma-separated)."""
    names = registry.names()
    if not only:
        return [registry.get(n)() for n in names]
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen: dict[str, None] = {}
    for w in wanted:
        family = [n for n in names if registry.get(n).family == w]
        if family:
            chosen.update(dict.fromkeys(family))
        elif w in registry:
            chosen[w] = None
        else:
            raise InputError(
                f"--exploits: {w!r} is neither an exploit class nor a family (text, judge, "
                f"code); classes: {', '.join(names)}"
            )
    return [registry.get(n)() for n in chosen]


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("redteam")
    def redteam(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
        data: Annotated[
            Path,
            typer.Argument(
                help="JSONL of {prompt, reference, completion? (the reference answer), "
                "wrong? (an honest wrong answer), metadata?}"
            ),
        ],
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
        fail_on: Annotated[
            float | None,
            typer.Option(
                help="exit 3 when a class's mean gain over the wrong answer (share of the "
                "total's range) exceeds GAIN"
            ),
        ] = None,
        max_attacks: Annotated[
            int, typer.Option(min=1, help="attacks per sample and exploit class")
        ] = 8,
        exploits: Annotated[
            str | None,
            typer.Option(
                help="only these classes or families, comma-separated (e.g. text,always-equal)"
            ),
        ] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="audit the first N samples")] = None,
        cache: Annotated[
            Path | None,
            typer.Option(
                help="sqlite cache of scored attacks (default: DATA.redteam.cache.sqlite)"
            ),
        ] = None,
        no_cache: Annotated[bool, typer.Option(help="keep no cache on disk")] = False,
        fresh_cache: Annotated[bool, typer.Option(help="empty the cache first")] = False,
    ) -> None:
        """Audit a spec against known reward hacks: how much each exploit class out-earns an
        honest wrong answer, per objective, sorted by risk."""
        from rich.console import Console

        from rewardhub._console import err, fail, say
        from rewardhub._output import OutputError, prepare_cache
        from rewardhub._spec_file import load_pipeline
        from rewardhub.errors import RewardHubError
        from rewardhub.hub import Hub
        from rewardhub.redteam.audit import audit
        from rewardhub.redteam.target import hints_from

        if not data.is_file():
            raise fail(f"data file {str(data)!r} does not exist or is not a file")
        if no_cache and (cache is not None or fresh_cache):
            raise fail("--no-cache keeps no cache: drop --cache/--fresh-cache, or --no-cache")
        cache_path = (
            None if no_cache else cache or data.with_name(data.name + ".redteam.cache.sqlite")
        )
        try:
            if cache_path is not None:
                prepare_cache(cache_path, fresh=fresh_cache)
            hub = Hub()
            chosen = choose_exploits(hub.exploits, exploits)
            with load_pipeline(spec, hub, cache_path) as pipe:
                targets = read_targets(data, hints_from(pipe), limit)
                with _progress(len(targets), err) as tick:
                    report = audit(
                        pipe,
                        targets,
                        chosen,
                        max_attacks=max_attacks,
                        spec_name=str(spec),
                        on_progress=tick,
                    )
        except OutputError as exc:
            raise fail(exc) from None
        except InputError as exc:  # the data or an option: the message names which
            raise fail(exc) from None
        except RewardHubError as exc:
            raise fail(f"{spec}: {exc}") from None
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            console = Console()
            console.print(report.table(fail_on))
            _print_worst(console, report.classes[:3], fail_on)
            n = report.counts
            say(
                "",
                f"{n['completions']} completions scored ({n['source_calls_computed']} source "
                f"results computed, {n['source_calls_cached']} from the cache); baselines built: {n['reference_built']} reference, "
                f"{n['wrong_built']} wrong answers (the rest given in {data})",
            )
        failing = report.failing(fail_on) if fail_on is not None else []
        if failing:
            names = ", ".join(f"{c.name} (+{c.total.mean_gain:.2f})" for c in failing)
            raise fail(
                f"the spec pays known reward hacks above --fail-on {fail_on}: {names}", GATE_FAILED
            )


class _progress:
    """A rich progress bar over samples on stderr; ``tick(n)`` advances it."""

    def __init__(self, total: int, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.bar = Progress(
            TextColumn("red-teaming"),
            BarColumn(),
            TaskProgressColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("redteam", total=total)

    def __enter__(self) -> Any:
        self.bar.__enter__()
        return lambda n: self.bar.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def _print_worst(console: Any, classes: Sequence[Any], gate: float | None) -> None:
    from rich.panel import Panel
    from rich.text import Text

    for c in classes:
        w = c.worst
        worrying = c.total.mean_gain > (0.05 if gate is None else min(gate, 0.05))
        if w is None or not worrying:
            continue
        body = Text(w.completion[:600])
        body.append(
            f"\n\ntotal {w.total:.4g} (wrong answer {w.wrong_total:.4g}, reference "
            f"{w.reference_total:.4g}); rewards {json.dumps(w.rewards)}"
        )
        if w.reasons:
            body.append(f"\nreasons: {json.dumps(w.reasons, ensure_ascii=False)}")
        console.print(
            Panel(body, title=f"worst {c.name} example (line {w.line})", title_align="left")
        )
