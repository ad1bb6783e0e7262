"""``rewardhub new-plugin NAME``: scaffold an installable plugin package (pyproject with the
``rewardhub`` entry point, a source with a config, a README, tests using the conformance kit).

No ``from __future__ import annotations``: typer reads the annotations of the command.
"""

import keyword
import re
import shutil
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated

from rewardhub.errors import InputError
from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

TEMPLATES = Path(__file__).with_name("plugin_template")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def scaffold(name: str, parent: Path, *, force: bool = False) -> Path:
    """Write the plugin ``rewardhub-NAME`` into ``parent/rewardhub-NAME``; return that folder.

    An existing folder is an error unless ``force`` (then it is replaced)."""
    base = name.lower().removeprefix("rewardhub-").removeprefix("rewardhub_")
    if not _NAME.fullmatch(base) or keyword.iskeyword(base.replace("-", "_")):
        raise InputError(
            f"plugin name {name!r} is not usable: use lowercase letters, digits and single "
            "dashes, starting with a letter (e.g. 'politeness' or 'code-style')"
        )
    words = re.split(r"[-_]", base)
    fields = {
        "dist": f"rewardhub-{base.replace('_', '-')}",
        "module": f"rewardhub_{base.replace('-', '_')}",
        "type": base.replace("_", "-"),
        "objective": base.replace("-", "_"),
        "cls": "".join(w.capitalize() for w in words),
    }
    target = parent / fields["dist"]
    if target.exists():
        if not force:
            raise InputError(f"{target} already exists; pick another --dir or pass --force")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{fields['module']}/__init__.py": "module.py.tmpl",
        f"tests/test_{fields['objective']}.py": "test_module.py.tmpl",
    }
    for dest, template in files.items():
        path = target / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(fields)
        path.write_text(text, encoding="utf-8")
    return target


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("new-plugin")
    def new_plugin(
        name: Annotated[str, typer.Argument(help="plugin name, e.g. politeness")],
        dir: Annotated[Path, typer.Option("--dir", help="folder to create the package in")] = Path(
            "."
        ),
        force: Annotated[bool, typer.Option(help="replace an existing folder")] = False,
    ) -> None:
        """Scaffold a plugin package: pyproject with the entry point, a source, README, tests."""
        from rewardhub._console import fail, say

        try:
            target = scaffold(name, dir, force=force)
        except InputError as exc:
            raise fail(str(exc)) from None
        say("created", f"{target}: next, `pip install -e '{target}[test]'` and `pytest {target}`")
