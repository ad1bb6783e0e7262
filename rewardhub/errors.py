"""One exception family: every error rewardhub raises on purpose is a RewardHubError."""

from __future__ import annotations


class RewardHubError(Exception):
    """Base class of every error rewardhub raises on purpose."""


class SpecError(RewardHubError, ValueError):
    """A pipeline spec (or a source config in it) is invalid.

    ``path`` is the place in the spec, e.g. ``sources[1].config.pattern``.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class PluginError(RewardHubError):
    """A plugin failed to load or registered something invalid."""


class DuplicateNameError(PluginError):
    """Two plugins registered the same type name."""


class UnknownTypeError(SpecError):
    """A spec names a source, aggregator or normalizer type no plugin provides."""


class MissingExtraError(RewardHubError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str, feature: str = "") -> None:
        self.module = module
        self.extra = extra
        what = f"{feature} needs" if feature else "this feature needs"
        super().__init__(
            f"{what} the optional dependency {module!r}, which is not installed. "
            f"Install it with: pip install 'rewardhub[{extra}]'"
        )


class InputError(RewardHubError, ValueError):
    """A sample or an input line is malformed. ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class AggregationError(RewardHubError, ValueError):
    """Values handed to an aggregator or normaliser are unusable (shape, inf, names...)."""


class AbstainError(RewardHubError):
    """Raised by the ``fail`` abstain policy when a source abstained."""


class SourceError(RewardHubError):
    """A source is misconfigured or cannot run at all (raised at construction, not per sample)."""
