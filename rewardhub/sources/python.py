"""The ``python`` source: a user function named as ``module:function`` or ``file.py:function``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import RewardSource, Scores, score_each
from rewardhub.spec import base_dir
from rewardhub.types import Sample

#: file → digest of the content each module was last executed from, so that a file edited
#: since is run again (the cache key hashes the file: the code that runs must match it)
_loaded: dict[str, str] = {}


def _digest(path: str | None) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def _fresh(module: Any) -> Any:
    """``module``, re-executed when its file changed since rewardhub last loaded it."""
    path = getattr(module, "__file__", None)
    digest = _digest(path)
    if path is None or digest is None:
        return module
    before = _loaded.setdefault(path, digest)
    if before != digest:
        module = importlib.reload(module)
        _loaded[path] = digest
    return module


def load_function(ref: str, relative_to: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function``.

    Raises ValueError on a malformed reference or a missing file or function, and
    :class:`ImportFailed` when importing the module raised (``SystemExit`` included)."""
    target, attr, fn = _lookup(ref, "function", relative_to)
    if not callable(fn):
        raise ValueError(f"{target!r} has no callable named {attr!r}")
    return fn  # type: ignore[no-any-return]


def load_object(ref: str, relative_to: Path | None = None) -> Any:
    """The object named by ``module:name`` or ``path/to/file.py:name`` (a class, an instance,
    a function); errors as :func:`load_function`."""
    target, attr, obj = _lookup(ref, "name", relative_to)
    if obj is _MISSING:
        raise ValueError(f"{target!r} has no attribute named {attr!r}")
    return obj


_MISSING = object()


def _lookup(ref: str, what: str, relative_to: Path | None = None) -> tuple[str, str, Any]:
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"{ref!r} is not 'module:{what}' or 'path/to/file.py:{what}'")
    try:
        module = _import(target, relative_to)
    except (ValueError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise ImportFailed(target, exc) from None
    return target, attr, getattr(module, attr, _MISSING)


class ImportFailed(Exception):
    """Importing a user module raised (or exited): the message names the module and why."""

    def __init__(self, module: str, exc: BaseException) -> None:
        what = (
            f"called sys.exit({exc.code!r})"
            if isinstance(exc, SystemExit)
            else f"raised {type(exc).__name__}: {exc}"
        )
        super().__init__(f"importing module {module!r} failed: it {what}")


def _import(target: str, relative_to: Path | None) -> Any:
    if not target.endswith(".py"):
        return _fresh(importlib.import_module(target))
    path = Path(target)
    if not path.is_absolute() and relative_to is not None and not path.exists():
        path = relative_to / path
    if not path.exists():
        raise ValueError(f"file {target!r} does not exist (looked in {path.parent.resolve()})")
    # named after the path and the content: an edited file is imported afresh
    ident = hashlib.sha1(str(path.resolve()).encode() + b"\0" + path.read_bytes())
    modname = "rewardhub_user_" + ident.hexdigest()[:16]
    module = sys.modules.get(modname)
    if module is None:
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[modname]  # as the import system does: a retry imports afresh
            raise
    return module


class PythonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    function: str = Field(description="'module:function' or 'path/to/file.py:function'")
    objectives: list[str] = Field(default_factory=lambda: ["python"], min_length=1)
    batched: bool = Field(
        False, description="true: the function takes the list of samples and returns the rows"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to the function")

    @field_validator("function")
    @classmethod
    def _shape(cls, v: str) -> str:
        if ":" not in v:
            raise ValueError(f"{v!r} is not 'module:function' or 'path/to/file.py:function'")
        return v


class Python(RewardSource):
    """A Python function you name; returns a float, a list of floats or None per sample."""

    type = "python"
    Config = PythonConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._base = base_dir.get()
        self._fn = self._load()

    def _load(self) -> Callable[..., Any]:
        try:
            return load_function(self.config.function, self._base)
        except ValueError as exc:
            raise SourceError(f"python source: function: {exc}") from None
        except ImportFailed as exc:
            raise SourceError(f"python source ({self.config.function!r}): {exc}") from None

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.objectives)

    def cache_files(self) -> Sequence[Path]:
        """The file that defines the function: editing it invalidates cached results."""
        module = sys.modules.get(getattr(self._fn, "__module__", ""))
        path = getattr(module, "__file__", None)
        return (Path(path),) if path else ()

    def score(self, samples: list[Sample]) -> Scores:
        kw = self.config.kwargs
        if self.config.batched:
            return self._fn(samples, **kw)  # type: ignore[no-any-return]
        fn = self._fn
        return score_each(lambda s: fn(s, **kw), samples, len(self.config.objectives))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_fn"]  # functions from files are not importable by name: reload them
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fn = self._load()


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Python)
