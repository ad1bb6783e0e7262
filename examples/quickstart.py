"""Score two samples with the demo spec and print the vector, the reasons and the totals."""

from __future__ import annotations

from pathlib import Path

import rewardhub as rh

SPEC = Path(__file__).resolve().parent.parent / "specs" / "demo.yaml"

with rh.Pipeline.from_yaml(SPEC) as pipe:
    samples = [
        rh.Sample(prompt="Say hi", completion="Hi! Glad to help, please ask."),
        rh.Sample(prompt="Say hi", completion=""),
    ]
    res = pipe.score(samples)
    print("objectives:", res.vector.objectives)
    print("values:\n", res.vector.values)
    print("why abstained:", res.vector.reasons)
    print("totals:", res.total)
    politer = pipe.score(samples, weights={"politeness": 3.0})
    print("totals with politeness weighted 3x:", politer.total)
    assert res.vector.values.shape == (2, 3)
    assert res.vector.reasons[1] == {"politeness": "abstained"}
