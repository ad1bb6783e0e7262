"""The cache key of a configured source: what it is, how it is configured, what it reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from rewardhub.source import RewardSource


def files_digest(paths: Sequence[Path]) -> str:
    """A digest of the names and contents of ``paths`` (a folder: every file under it)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f).encode("utf-8", "surrogatepass") + b"\0")
            try:
                h.update(f.read_bytes())
            except OSError as exc:  # a missing file is part of the state too
                h.update(f"<unreadable: {exc.strerror}>".encode())
            h.update(b"\0")
    return h.hexdigest()


def source_cache_key(source: RewardSource) -> str:
    """``type:digest`` of the source's type, class, version, config and the files it reads."""
    cfg = source.config.model_dump(mode="json")
    cls = type(source)
    files = list(source.cache_files())
    blob = json.dumps(
        [
            source.type,
            f"{cls.__module__}.{cls.__qualname__}",
            cls.version,
            cfg,
            files_digest(files) if files else "",
        ],
        sort_keys=True,
        default=repr,
    )
    return f"{source.type}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"
