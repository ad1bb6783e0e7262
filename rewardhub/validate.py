"""Every problem of a spec in one pass (``rewardhub validate``), not just the first.

The structure is checked whole (pydantic lists every error); then each source, normaliser and
the aggregator on its own: its type and its config. Problems that need the parts together
(objectives, weights, std units) show once the parts themselves are sound, when the pipeline
is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rewardhub.errors import RewardHubError, SpecError
from rewardhub.hub import Hub
from rewardhub.registry import Registry
from rewardhub.spec import parse_spec, validate_config


def spec_problems(data: Mapping[str, Any], hub: Hub) -> list[RewardHubError]:
    """The problems found in the spec ``data`` and in each of its parts' type and config."""
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        return [exc]
    checks: list[Callable[[], object]] = []
    for i, s in enumerate(spec.sources):
        checks.append(_config_check(hub.sources, s.type, s.config, f"sources[{i}]", "type"))
    many = isinstance(spec.normalize, list)
    for j, n in enumerate(spec.normalizers):
        path = f"normalize[{j}]" if many else "normalize"
        checks.append(_config_check(hub.normalizers, n.method, n.params, path, "method"))
    checks.append(lambda: hub.aggregators.get(spec.aggregate.method, "aggregate.method"))
    problems: list[RewardHubError] = []
    for check in checks:
        try:
            check()
        except RewardHubError as exc:
            problems.append(exc)
    return problems


def _config_check(
    registry: Registry[Any], name: str, config: Mapping[str, Any], path: str, key: str
) -> Callable[[], object]:
    def check() -> object:
        cls = registry.get(name, f"{path}.{key}")
        return validate_config(cls.Config, config, f"{path}.config" if key == "type" else path)

    return check
