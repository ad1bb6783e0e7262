"""Diagnostics on stderr for the command line: one helper so every command prints alike."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def say(label: str, message: object) -> None:
    """Print one line to stderr: never re-wrapped (paths stay whole), never read as markup."""
    text = escape(str(message))
    err.print(f"{label} {text}" if label else text, highlight=False, soft_wrap=True)


def fail(message: object, code: int = 1) -> typer.Exit:
    """Print ``error: message`` and return the ``typer.Exit`` to raise."""
    say("[bold red]error:[/]", message)
    return typer.Exit(code)
