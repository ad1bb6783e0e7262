"""Lazy imports of optional dependencies with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from rewardhub.errors import MissingExtraError


def require(module: str, extra: str, feature: str = "") -> ModuleType:
    """Import ``module`` or raise MissingExtraError naming ``rewardhub[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != root:
            raise  # the module is there but one of *its* imports failed: show that
        raise MissingExtraError(module, extra, feature) from exc
