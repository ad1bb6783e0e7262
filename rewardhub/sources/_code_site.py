"""Start-up of the Python processes ``code-exec`` runs in its sandboxes (shipped beside them).

They start with ``-S``: importing ``site`` costs about 25 ms of every start. :func:`install`
puts back what code may expect of it: ``exit()`` and ``quit()``, and the site directories,
added on the first import that misses so that an installed package still imports.
Standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any

__all__ = ["LateSite", "install"]


class LateSite:
    """A meta-path finder consulted after the others: runs ``site.main()`` once, on the first
    top-level import nothing else found, and retries it."""

    done = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if LateSite.done or path is not None:
            return None
        LateSite.done = True
        import importlib.machinery
        import site

        site.main()
        return importlib.machinery.PathFinder.find_spec(name, None, target)


def install() -> None:
    sys.meta_path.append(LateSite())
    for name in ("exit", "quit"):
        if not hasattr(builtins, name):
            setattr(builtins, name, sys.exit)
