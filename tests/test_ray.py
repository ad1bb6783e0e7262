"""Ray scale-out: score_dataset equals the local pipeline; serve --ray answers like the plain
server. A local Ray with 2 CPUs, shut down after."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

import rewardhub as rh

ray = pytest.importorskip("ray")

SPEC = {
    "sources": [
        {"id": "len", "type": "length", "config": {"target": 20}},
        {"id": "ans", "type": "regex", "config": {"pattern": "answer", "objective": "format"}},
    ],
    "aggregate": {"method": "weighted"},
}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, inside ray
def test_score_dataset_equals_the_local_pipeline(local_ray: None) -> None:
    from rewardhub.distributed import RECORD, score_dataset

    rows = [
        {"prompt": f"q{i}", "completion": ("answer " if i % 3 else "") + "x" * (i % 40)}
        for i in range(1000)
    ]
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    out = score_dataset(ray.data.from_items(rows), SPEC, batch_size=200).take_all()
    with rh.Pipeline.from_spec(SPEC) as pipe:
        want = pipe.score([rh.Sample(r["prompt"], r["completion"]) for r in rows])
    assert [o["prompt"] for o in out] == [r["prompt"] for r in rows]
    np.testing.assert_allclose([o["total"] for o in out], want.total)
    np.testing.assert_allclose([o["format"] for o in out], want.vector["format"])
    assert [json.loads(o[RECORD]) for o in out] == want.to_records()


def test_score_dataset_refuses_batch_relative_specs() -> None:
    from rewardhub.distributed import score_dataset
    from rewardhub.errors import SpecError

    with pytest.raises(SpecError, match="zscore"):
        score_dataset(None, {**SPEC, "normalize": {"method": "zscore"}})
