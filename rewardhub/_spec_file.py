"""A pipeline from a spec file, as the commands load it."""

from __future__ import annotations

from pathlib import Path

from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline
from rewardhub.spec import base_dir, read_spec_file


def load_pipeline(
    spec: Path,
    hub: Hub,
    cache_path: Path | None,
    memory_items: int | None = None,
    cache_cheap: bool = False,
) -> Pipeline:
    """The pipeline of a spec file, relative paths read from the file's folder; a
    ``cache_path`` overrides the spec's disk cache (and ``memory_items`` caps its memory
    cache), ``cache_cheap`` keeps cheap sources' results on disk too."""
    data = read_spec_file(spec)
    cache_spec = data.get("cache", {})
    if cache_path is not None and isinstance(cache_spec, dict):  # else validation reports it
        cache_spec = {**cache_spec, "path": str(cache_path)}
        if cache_cheap:
            cache_spec["cheap_sources"] = True
        current = cache_spec.get("memory_items", memory_items)
        if memory_items is not None and isinstance(current, int):
            cache_spec["memory_items"] = min(current, memory_items)
        data["cache"] = cache_spec
    token = base_dir.set(spec.resolve().parent)
    try:
        return Pipeline(data, hub=hub)
    finally:
        base_dir.reset(token)
