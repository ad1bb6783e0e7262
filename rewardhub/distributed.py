"""Scale-out on Ray (extra ``ray``): offline scoring as Ray Data ``map_batches`` over an actor
pool (each actor builds the pipeline once), and the server as a Ray Serve application.

A Ray Data batch is whichever rows Ray put together, so specs whose reward for a sample
depends on its batch (group normalisation, candidate comparison) are refused, as in the
micro-batcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardhub._optional import require
from rewardhub.adapters._common import SpecLike, load_pipeline
from rewardhub.batching import check_rowwise
from rewardhub.errors import InputError
from rewardhub.hub import Hub
from rewardhub.pipeline import Pipeline
from rewardhub.types import Sample

#: the output column holding each row's JSON record (rewards, errors, outcomes, total)
RECORD = "rewardhub"


class _ScoreBatch:
    """A Ray Data actor: builds the pipeline once, then scores batch after batch."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline  # unpickled here: this actor's own sources, caches and loop

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(batch.values()))) if batch else 0
        samples = [_sample({k: _plain(v[i]) for k, v in batch.items()}) for i in range(n)]
        result = self.pipeline.score(samples)
        out = dict(batch)
        for j, o in enumerate(result.vector.objectives):
            out[o] = result.vector.values[:, j].copy()
        out["total"] = np.asarray(result.total, dtype=np.float64)
        out[RECORD] = np.array([json.dumps(r) for r in result.to_records()], dtype=object)
        return out


def _plain(x: Any) -> Any:
    """A Ray/numpy cell as plain Python (numpy scalars and arrays become Python values)."""
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _sample(row: Mapping[str, Any]) -> Sample:
    if "text" in row and "completion" not in row:  # a line of JSONL read as text
        try:
            row = json.loads(row["text"])
        except ValueError as exc:
            raise InputError(f"a line is not JSON: {exc}") from None
    row = {k: v for k, v in row.items() if v is not None or k in ("reference",)}
    return Sample.from_dict(row)


def score_dataset(
    ds: Any,
    spec: SpecLike,
    *,
    hub: Hub | None = None,
    batch_size: int = 256,
    actors: int = 2,
    num_cpus: float = 1,
) -> Any:
    """Score a Ray Dataset of ``{prompt, completion, reference?, metadata?}`` rows.

    Returns the dataset with one float column per objective (NaN: no value), ``total``, and
    ``rewardhub`` (each row's JSON record, as ``rewardhub score`` writes it). Runs on a pool
    of ``actors`` actors, each building the pipeline once."""
    ray = require("ray", "ray", "rewardhub.distributed")
    require("ray.data", "ray", "rewardhub.distributed")
    pipeline = load_pipeline(spec, hub)
    check_rowwise(pipeline, "score_dataset")
    return ds.map_batches(
        _ScoreBatch,
        fn_constructor_kwargs={"pipeline": pipeline},
        batch_size=batch_size,
        batch_format="numpy",
        # an autoscaling pool (1..actors): a fixed pool holding every CPU would starve the
        # dataset's own read tasks (ReadText, ReadParquet), and the run would hang
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=num_cpus,
    )


def score_samples(
    samples: Sequence[Sample],
    spec: SpecLike,
    *,
    hub: Hub | None = None,
    actors: int = 2,
    batch_size: int = 256,
) -> Iterator[dict[str, Any]]:
    """Score ``samples`` on Ray (a local Ray unless ``RAY_ADDRESS`` names a cluster), yielding
    each sample's record (as ``ScoreResult.to_records``) in input order.

    The samples travel from this process (as JSON text, so no column needs one type), so
    input that only this machine can read is fine on a multi-node cluster."""
    ray = require("ray", "ray", "rewardhub score --ray")
    if not ray.is_initialized():
        ray.init(address=None, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    rows = [{"text": json.dumps(s.to_dict(), ensure_ascii=False)} for s in samples]
    if not rows:
        return
    ds = score_dataset(
        ray.data.from_items(rows), spec, hub=hub, actors=actors, batch_size=batch_size
    )
    for row in ds.iter_rows():
        yield json.loads(row[RECORD])


def serve_on_ray(spec: Path, settings: Any, *, replicas: int = 2, blocking: bool = True) -> Any:
    """Deploy the reward server on Ray Serve with ``replicas`` replicas (each builds its own
    pipeline and micro-batcher). With ``blocking`` the call serves until interrupted."""
    ray = require("ray", "ray", "rewardhub serve --ray")
    serve = require("ray.serve", "ray", "rewardhub serve --ray")
    pipeline = load_pipeline(spec)

    def build() -> Any:
        from rewardhub.server.app import create_app
        from rewardhub.server.run import install_scrub

        install_scrub(settings.secrets())  # in the replica: Ray Serve's loggers and ours
        return create_app(pipeline, settings)  # pipeline: unpickled in the replica

    from rewardhub.server.run import install_scrub

    install_scrub(settings.secrets())  # this process's lines too
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployment = serve.deployment(num_replicas=replicas, name="rewardhub")(serve.ingress(build)())
    handle = serve.run(deployment.bind(), name="rewardhub", route_prefix="/", blocking=blocking)
    return handle
