"""``rewardhub train preference-head DATA.jsonl -o DIR``: fit a Bradley–Terry head (optionally a
PAL-style mixture) on frozen sentence embeddings, report its held-out pairwise accuracy.

Heavy imports (torch, sentence-transformers) happen only when the command runs. No
``from __future__ import annotations``: typer reads the annotations of the command.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rewardhub.errors import RewardHubError
from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    train_app = typer.Typer(help="Train reward models from data.", no_args_is_help=True)

    @train_app.command("preference-head")
    def preference_head_cmd(
        data: Annotated[Path, typer.Argument(help="JSONL of {prompt, chosen, rejected, user?}")],
        output: Annotated[Path, typer.Option("--output", "-o", help="directory to write")],
        embedder: Annotated[
            str, typer.Option(help="sentence-transformers model dir, or minilm")
        ] = "minilm",
        mixture: Annotated[
            int, typer.Option(min=1, help="K prototype heads with per-user weights (PAL)")
        ] = 1,
        epochs: Annotated[int, typer.Option(min=1)] = 300,
        lr: Annotated[float, typer.Option(min=0.0)] = 0.05,
        holdout: Annotated[float, typer.Option(min=0.0, max=0.9, help="held-out fraction")] = 0.2,
        seed: Annotated[int, typer.Option()] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    ) -> None:
        """Train a preference head; prints the held-out pairwise accuracy."""
        from rich.progress import Progress

        from rewardhub._console import fail, say
        from rewardhub._optional import require
        from rewardhub.models import embed, load_sentence_model
        from rewardhub.preference import read_pairs, train

        try:
            require("sentence_transformers", "models", "rewardhub train")  # before reading
            if not data.exists():
                raise RewardHubError(f"file {str(data)!r} does not exist")
            pairs = read_pairs(data)
            say("", f"{len(pairs)} pairs; embedding with {embedder} ...")
            model = load_sentence_model(embedder)
            with Progress(transient=True, disable=as_json) as bar:
                task = bar.add_task("training", total=epochs)

                def progress(step: int, total: int, loss: float) -> None:
                    bar.update(task, completed=step, description=f"training (loss {loss:.4f})")

                head = train(
                    pairs,
                    lambda texts: embed(model, texts),
                    # an alias stays an alias; a directory is saved absolute, to load from anywhere
                    embedder=str(Path(embedder).resolve()) if Path(embedder).exists() else embedder,
                    mixture=mixture,
                    epochs=epochs,
                    lr=lr,
                    holdout=holdout,
                    seed=seed,
                    progress=progress,
                )
            head.save(output)
        except RewardHubError as exc:
            raise fail(exc) from None
        r = head.report
        if as_json:
            typer.echo(json.dumps(r))
            return
        acc = r["heldout_accuracy"]
        say(
            "",
            f"held-out pairwise accuracy {acc:.3f} on {r['heldout_pairs']} pairs "
            f"(chance exceeds {r['chance_bound_p01']:.3f} with p < 0.01); "
            f"train {r['train_accuracy']:.3f} on {r['train_pairs']}"
            if acc is not None
            else f"no held-out split; train accuracy {r['train_accuracy']:.3f}",
        )
        say("", f"head written to {output}")

    cli.add_typer(train_app, name="train")
