"""ensemble: mean and std across members, member columns for wco / uwo / lcb."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.aggregate.uncertainty import ensemble_stats, uwo

MEMBERS = """
import math
import rewardhub as rh

def a(s):
    return [len(s.completion) / 10, s.completion.count("!")]

def b(s):
    return [len(s.completion.split()), -1.0]

def picky(s):
    if "skip" in s.completion:
        return rh.Abstain("picky cannot read this")
    if "bad" in s.completion:
        return rh.Fail("bad content")
    return [2.0, 3.0]
"""


@pytest.fixture
def members(tmp_path: Path) -> Path:
    path = tmp_path / "members.py"
    path.write_text(MEMBERS)
    return path


def _member(path: Path, fn: str, id: str | None = None) -> dict[str, object]:
    m: dict[str, object] = {
        "type": "python",
        "config": {"function": f"{path}:{fn}", "objectives": ["helpful", "fun"]},
    }
    if id:
        m["id"] = id
    return m


SAMPLES = [
    rh.Sample(prompt="p", completion=c)
    for c in ["hi there!", "ok", "a b c d e!!", "skip me", "bad one"]
]


def test_mean_and_std_across_members_match_numpy(members: Path) -> None:
    spec = {
        "sources": [
            {
                "type": "ensemble",
                "config": {"members": [_member(members, f) for f in ("a", "b", "picky")]},
            }
        ]
    }
    with rh.Pipeline(spec) as pipe:
        batch = pipe.vector(SAMPLES)
    a = np.array([[len(s.completion) / 10, s.completion.count("!")] for s in SAMPLES])
    b = np.array([[len(s.completion.split()), -1.0] for s in SAMPLES])
    picky = np.array([[2.0, 3.0]] * 3 + [[math.nan] * 2] + [[0.0, 0.0]])  # abstain; fail at 0
    mean, var = ensemble_stats(np.stack([a, b, picky]))
    np.testing.assert_allclose(batch.values, mean)
    assert batch.std is not None
    np.testing.assert_allclose(batch.std, np.sqrt(var))
    assert batch.objectives == ("helpful", "fun")


def test_keep_members_feeds_uwo_wco_and_lcb(members: Path) -> None:
    ens = {
        "type": "ensemble",
        "config": {
            "members": [_member(members, "a", "x"), _member(members, "b", "y")],
            "keep_members": True,
        },
    }
    groups = {"helpful": ["helpful_x", "helpful_y"], "fun": ["fun_x", "fun_y"]}
    samples = SAMPLES[:3]
    with rh.Pipeline({"sources": [ens], "aggregate": "weighted"}) as pipe:
        res = pipe.score(samples)
    # the member columns carry no std of their own: uwo over them is an error, never "certain"
    with (
        rh.Pipeline({"sources": [ens], "aggregate": {"method": "uwo", "lam": 0.5}}) as pipe,
        pytest.raises(rh.AggregationError, match="members:"),
    ):
        pipe.score(samples)
    assert res.vector.objectives == ("helpful", "fun", "helpful_x", "fun_x", "helpful_y", "fun_y")
    v = res.vector.values
    mean, var = ensemble_stats(np.stack([v[:, [2, 3]], v[:, [4, 5]]]))
    with rh.Pipeline(
        {"sources": [ens], "aggregate": {"method": "uwo", "lam": 0.5, "members": groups}}
    ) as pipe:
        by_members = pipe.score(samples).total
    expected = uwo(mean, var, 0.5).sum(axis=1)
    np.testing.assert_allclose(by_members, expected)
    with rh.Pipeline({"sources": [ens], "aggregate": {"method": "wco", "members": groups}}) as pipe:
        np.testing.assert_allclose(
            pipe.score(samples).total, np.minimum(v[:, [2, 3]], v[:, [4, 5]]).sum(axis=1)
        )
    # uwo from the ensemble's std on the mean columns agrees with the member columns' spread
    np.testing.assert_allclose(v[:, :2], mean)
    assert res.vector.std is not None
    np.testing.assert_allclose(res.vector.std[:, :2] ** 2, var)


def test_every_member_abstaining_abstains_with_their_reasons(members: Path) -> None:
    spec = {
        "sources": [
            {
                "type": "ensemble",
                "config": {"members": [_member(members, "picky"), _member(members, "picky", "p2")]},
            }
        ]
    }
    with rh.Pipeline(spec) as pipe:
        b = pipe.vector([rh.Sample(prompt="p", completion="skip")])
    assert np.isnan(b.values).all()
    assert "every member abstained" in str(b.reasons[0]) and "picky cannot read this" in str(
        b.reasons[0]
    )


def test_a_failing_member_never_lifts_the_ensemble(members: Path) -> None:
    spec = {
        "sources": [
            {
                "type": "ensemble",
                "config": {"members": [_member(members, "picky"), _member(members, "picky", "p2")]},
            }
        ]
    }
    with rh.Pipeline(spec) as pipe:
        b = pipe.vector(
            [rh.Sample(prompt="p", completion="bad"), rh.Sample(prompt="p", completion="good")]
        )
    assert (b.values[0] <= b.values[1]).all()


def test_bad_ensembles_are_load_errors(members: Path, tmp_path: Path) -> None:
    other = {"type": "length", "config": {"target": 5}}
    with pytest.raises(rh.SpecError, match=r"same objectives.*members\[1\] gives \['brevity'\]"):
        rh.Pipeline(
            {
                "sources": [
                    {"type": "ensemble", "config": {"members": [_member(members, "a"), other]}}
                ]
            }
        )
    with pytest.raises(rh.SpecError, match="at least 2 members"):
        rh.Pipeline({"sources": [{"type": "ensemble", "config": {"members": [other]}}]})
    with pytest.raises(rh.SpecError, match=r"members\[1\].type"):
        rh.Pipeline(
            {"sources": [{"type": "ensemble", "config": {"members": [other, {"type": "nope"}]}}]}
        )
