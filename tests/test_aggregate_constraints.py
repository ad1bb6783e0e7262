"""Uncertainty (WCO/UWO/LCB), lexicographic, gates and the Lagrangian, by hand and in specs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import BaseModel

import rewardhub as rh
from rewardhub.aggregate import ensemble_stats, lcb, lexicographic, uwo, wco
from rewardhub.aggregate.gates import Gate, Lagrangian
from rewardhub.aggregate.lexicographic_order import Lexicographic
from rewardhub.aggregate.uncertainty import LCB, UWO, WCO
from rewardhub.building import building_with

NAMES = ("helpful", "harmless")


class TableConfig(BaseModel):
    objectives: list[str] = ["helpful", "harmless"]


class Table(rh.RewardSource):
    """Reads each sample's rewards (and std) from ``metadata["r"]`` / ``metadata["s"]``."""

    type = "table"
    Config = TableConfig

    @classmethod
    def objectives_for(cls, config: TableConfig) -> tuple[str, ...]:
        return tuple(config.objectives)

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        vals = [[math.nan if x is None else x for x in s.metadata["r"]] for s in samples]
        if all("s" in s.metadata for s in samples):
            return rh.ScoresWithStd(vals, [s.metadata["s"] for s in samples])
        return vals


class Plugin:
    @rh.hookimpl
    def register_sources(self, registry: rh.SourceRegistry) -> None:
        registry.add(Table)


def pipeline(aggregate: dict[str, object], **spec: object) -> rh.Pipeline:
    hub = rh.Hub(plugins=[Plugin()], entry_points=False)
    return rh.Pipeline.from_spec(
        {"sources": [{"type": "table"}], "aggregate": aggregate, **spec}, hub=hub
    )


def samples(
    rows: list[list[float | None]], std: list[list[float]] | None = None
) -> list[rh.Sample]:
    out = []
    for i, r in enumerate(rows):
        meta: dict[str, object] = {"r": r}
        if std is not None:
            meta["s"] = std[i]
        out.append(rh.Sample(prompt=f"p{i // 2}", completion=str(i), metadata=meta))
    return out


# -- uncertainty ------------------------------------------------------------------------------


def test_ensemble_functions_by_hand() -> None:
    members = np.array([[[1.0, 4.0]], [[3.0, 2.0]]])  # 2 members × 1 sample × 2 objectives
    mean, var = ensemble_stats(members)
    assert mean.tolist() == [[2.0, 3.0]] and var.tolist() == [[1.0, 1.0]]
    assert wco(members).tolist() == [[1.0, 2.0]]
    assert uwo(mean, var).tolist() == [[1.5, 2.5]]  # default λ = 0.5 (best-of-n)
    assert uwo(mean, var, 0.1)[0].tolist() == pytest.approx([1.9, 2.9])
    assert lcb(mean, np.sqrt(var), 2.0).tolist() == [[0.0, 1.0]]
    with pytest.raises(rh.AggregationError, match="shape"):
        uwo([[1.0]], [[1.0, 2.0]])
    with pytest.raises(rh.AggregationError, match="members must be"):
        wco(np.zeros((2, 0, 2)))
    with pytest.raises(rh.AggregationError, match="inf"):
        wco([[[np.inf]]])


def test_uwo_and_lcb_from_batch_std_in_a_spec() -> None:
    rows: list[list[float | None]] = [[1.0, 2.0], [3.0, None]]
    std = [[1.0, 2.0], [0.0, 1.0]]
    # renormalize: the aggregator itself sees the missing cell (the default would make row 1
    # unscorable before it gets there)
    with pipeline({"method": "uwo", "lam": 0.5}, on_abstain="renormalize") as pipe:
        res = pipe.score(samples(rows, std))
    # row 0: (1 − 0.5·1) + (2 − 0.5·4) = 0.5; row 1: only helpful, rescaled ×2 → 6
    assert res.total.tolist() == pytest.approx([0.5, 6.0])
    assert res.diagnostics["per_sample"][0]["std"] == {"helpful": 1.0, "harmless": 2.0}
    with pipeline({"method": "lcb", "k": 1.0}, on_abstain="renormalize") as pipe:
        assert pipe.score(samples(rows, std)).total.tolist() == pytest.approx([0.0, 6.0])


def test_uncertainty_without_std_names_the_fix() -> None:
    with (
        pipeline({"method": "uwo"}) as pipe,
        pytest.raises(rh.AggregationError, match="no std: use a source that reports std"),
    ):
        pipe.score(samples([[1.0, 2.0]]))


def test_member_columns() -> None:
    names = ("rm0", "rm1", "rm2")
    vals = np.array([[1.0, 2.0, 3.0], [0.0, np.nan, 4.0]])
    ctx = rh.Context(objectives=names)
    members = {"members": {"helpful": ["rm0", "rm1", "rm2"]}}
    assert WCO(members, names).aggregate(vals, ctx).total.tolist() == [1.0, 0.0]
    uw = UWO({**members, "lam": 1.0}, names).aggregate(vals, ctx).total
    assert uw.tolist() == pytest.approx([2.0 - 2 / 3, 2.0 - 4.0])
    lc = LCB(members, names).aggregate(vals, ctx).total
    assert lc.tolist() == pytest.approx([2.0 - math.sqrt(2 / 3), 0.0])
    with pytest.raises(rh.AggregationError, match="unknown objective"):
        WCO({"members": {"helpful": ["rm9"]}}, names).aggregate(vals, ctx)


# -- lexicographic ----------------------------------------------------------------------------


def test_lexicographic_by_hand() -> None:
    vals = np.array([[1.0, 5.0], [0.95, 9.0], [0.5, 10.0], [1.0, 1.0]])
    score, stage = lexicographic(vals, [0.1, 0.0])
    # stage 0 keeps r0 ≥ 0.9: rows 0, 1, 3; row 2 out with (0.5 − 0.5)/(1 − 0.5) = 0
    # stage 1 among 0, 1, 3: best r1 = 9 → row 1 survives (score 2); rows 0, 3: 1 + frac
    assert stage.tolist() == [1, -1, 0, 1]
    assert score.tolist() == pytest.approx([1 + 4 / 8, 2.0, 0.0, 1.0])
    with pytest.raises(rh.AggregationError, match="tolerances"):
        lexicographic(vals, [-1.0, 0.0])


def test_lexicographic_aggregator_order_and_groups() -> None:
    vals = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    smp = [rh.Sample(prompt=p, completion=str(i)) for i, p in enumerate("xxyy")]
    ctx = rh.Context(objectives=NAMES, samples=smp)
    agg = Lexicographic({"order": ["harmless", "helpful"]}, NAMES).aggregate(vals, ctx)
    assert agg.total.tolist() == [0.0, 2.0, 0.0, 2.0]
    assert agg.diagnostics["per_sample"][0]["eliminated_by"] == "harmless"
    with pytest.raises(rh.AggregationError, match="unknown objective"):
        Lexicographic({"order": ["nope"]}, NAMES).aggregate(vals, ctx)


# -- gates ------------------------------------------------------------------------------------


def test_gate_penalty_and_veto_in_a_spec() -> None:
    spec = {
        "method": "gate",
        "base": {"method": "weighted"},
        "gates": [
            {"objective": "harmless", "min": 0.5, "action": "penalty", "penalty": -1.0},
            {"objective": "helpful", "min": 0.0, "action": "veto"},
        ],
        "veto_value": -5.0,
    }
    rows: list[list[float | None]] = [[2.0, 1.0], [2.0, 0.1], [-1.0, 0.1], [1.0, None]]
    # renormalize hands the abstained cell to the gate (the default would make row 3's
    # total NaN before any aggregator sees it)
    with pipeline(spec, normalize={"method": "zscore"}, on_abstain="renormalize") as pipe:
        res = pipe.score(samples(rows))
    t = res.total.tolist()
    assert t[1] == -1.0  # harmless 0.1 < 0.5 (raw units, not z-scores) → penalty
    assert t[2] == -5.0  # helpful < 0 → veto wins over the penalty
    assert t[3] == -1.0  # harmless abstained → fails closed (on_missing: fail)
    per = res.diagnostics["per_sample"]
    assert per[0]["failed_gate"] is None and not per[0]["vetoed"]
    assert per[1]["failed_gate"] == "harmless"
    assert per[2]["vetoed"] and per[2]["failed_gates"] == ["harmless", "helpful"]
    assert res.diagnostics["vetoed"].tolist() == [False, False, True, False]
    assert res.diagnostics["gate_failures"] == {"harmless": 3, "helpful": 1}
    assert t[0] == pytest.approx(res.diagnostics["per_sample"][0]["base_total"])


def test_gate_wraps_any_builtin_and_checks_names() -> None:
    config = {"base": {"method": "maxmin"}, "gates": [{"objective": "harmless", "max": 0.9}]}
    with pytest.raises(rh.RewardHubError, match="needs the Hub they come from"):
        Gate(config, NAMES)  # outside a pipeline: say where the base's type comes from
    with building_with(rh.Hub(entry_points=False)):
        gate = Gate(config, NAMES)
        with pytest.raises(rh.AggregationError, match="unknown objective"):
            Gate({"gates": [{"objective": "nope", "min": 0}]}, NAMES)
        with pytest.raises(rh.AggregationError, match="unknown aggregator 'nope'"):
            Gate({"base": {"method": "nope"}, "gates": [{"objective": "helpful", "min": 0}]}, NAMES)
        with pytest.raises(Exception, match="needs min and/or max"):
            Gate({"gates": [{"objective": "helpful"}]}, NAMES)
    agg = gate.aggregate(np.array([[0.2, 0.5], [0.3, 0.95]]), rh.Context(objectives=NAMES))
    assert agg.total.tolist() == [0.2, -1.0]
    assert agg.diagnostics["per_sample"][0]["binding"] == "helpful"


# -- lagrangian -------------------------------------------------------------------------------


def test_lagrangian_total_by_hand() -> None:
    lag = Lagrangian(
        {"constraints": [{"objective": "harmless", "threshold": 0.5}], "lambda_init": 1.0},
        NAMES,
    )
    agg = lag.aggregate(np.array([[2.0, 0.0], [1.0, 1.0]]), rh.Context(objectives=NAMES))
    # (r + λ (c − b)) / (1 + λ): (2 − 0.5)/2, (1 + 0.5)/2
    assert agg.total.tolist() == [0.75, 0.75]
    assert agg.diagnostics["per_sample"][0]["binding"] == "harmless"
    assert agg.diagnostics["per_sample"][1]["binding"] is None


def test_lagrangian_dual_update_and_state_round_trip(tmp_path: object) -> None:
    spec = {
        "method": "lagrangian",
        "constraints": [{"objective": "harmless", "threshold": 0.5}],
        "lambda_init": 1.0,
        "lr": 0.5,
    }
    with pipeline(spec) as pipe:
        unsafe = samples([[1.0, 0.0], [1.0, 0.2]])
        res = pipe.score(unsafe)
        pipe.update(res, unsafe)  # mean harmless 0.1 < 0.5 → λ = 1 + 0.5·0.4
        assert pipe.aggregator.state_dict() == {"lambda": [pytest.approx(1.2)]}
        safe = samples([[1.0, 2.0], [1.0, 2.0]])
        for _ in range(10):
            pipe.update(pipe.score(safe), safe)  # λ shrinks, never below 0
        assert pipe.aggregator.state_dict() == {"lambda": [0.0]}
        state = json.loads(json.dumps(pipe.state_dict()))
    with pipeline(spec) as other:
        other.load_state_dict(state)
        assert other.aggregator.state_dict() == {"lambda": [0.0]}
        with pytest.raises(rh.AggregationError, match="one per constraint"):
            other.aggregator.load_state_dict({"lambda": [1.0, 2.0]})


# -- every registered method runs from a spec ------------------------------------------------


@pytest.mark.parametrize(
    "aggregate",
    [
        {"method": "weighted"},
        {"method": "directional", "weights": {"helpful": 3, "harmless": 4}},
        {"method": "tchebycheff"},
        {"method": "smooth_tchebycheff", "mu": 0.2},
        {"method": "maxmin"},
        {"method": "softmin", "tau": 0.5},
        {"method": "robust", "lam": 0.5},
        {"method": "pareto"},
        {"method": "lexicographic", "tolerances": {"helpful": 0.1}},
        {"method": "gate", "gates": [{"objective": "harmless", "min": 0}]},
        {"method": "lagrangian", "constraints": [{"objective": "harmless"}], "on_missing": "worst"},
    ],
)
@pytest.mark.parametrize("normalize", ["none", "zscore", "rank", "minmax", "group", "running"])
def test_every_method_from_a_spec(aggregate: dict[str, object], normalize: str) -> None:
    rows: list[list[float | None]] = [[1.0, 0.5], [0.2, 0.9], [0.7, None], [0.3, 0.3]]
    # renormalize: every method must cope with the abstained cell itself
    with pipeline(aggregate, normalize={"method": normalize}, on_abstain="renormalize") as pipe:
        res = pipe.score(samples(rows))
        again = pipe.with_aggregator("maxmin").score(samples(rows))
    assert res.total.shape == (4,) and np.isfinite(res.total).all()
    per = res.diagnostics["per_sample"]
    assert len(per) == 4 and all(isinstance(per[i], dict) for i in range(4))
    json.dumps([per[i] for i in range(4)])  # JSON-ready
    assert "binding" in again.diagnostics["per_sample"][0]


def test_unknown_method_lists_the_installed_ones() -> None:
    with pytest.raises(rh.UnknownTypeError, match="Did you mean 'maxmin'"):
        pipeline({"method": "maxmn"})


@pytest.mark.parametrize("on_missing", ["unscorable", "worst"])
def test_lagrangian_abstained_constraint_fails_closed(on_missing: str) -> None:
    """An abstaining safety judge must never score above an unsafe sample: the old code read
    its NaN slack as 0 (exactly at the threshold), above any violation."""
    rows: list[list[float | None]] = [
        [1.0, 1.0],  # safe
        [5.0, -2.0],  # unsafe, very helpful
        [9.0, None],  # the safety judge abstained, most helpful of all
    ]
    spec = {
        "method": "lagrangian",
        "constraints": [{"objective": "harmless", "threshold": 0.0}],
        "on_missing": on_missing,
    }
    # renormalize hands the abstained cell to the aggregator (the pipeline's default,
    # unscorable, would make the total NaN before the aggregator's own rule is reached)
    with pipeline(spec, on_abstain="renormalize") as pipe:
        res = pipe.score(samples(rows))
    safe, unsafe, abstained = res.total.tolist()
    assert not abstained > unsafe and not abstained > safe
    if on_missing == "unscorable":
        assert math.isnan(abstained)
    else:
        assert abstained == min(safe, unsafe)
    assert res.diagnostics["per_sample"][2]["binding"] == "harmless"
    # the same with on_abstain: fill — the rule reads the source's value, which is missing
    with pipeline(spec, on_abstain={"fill": 1.0}) as pipe:
        filled = pipe.score(samples(rows)).total.tolist()
    assert not filled[2] > filled[1]


class Doubled(rh.Aggregator):
    """A plugin's aggregator: twice the plain sum."""

    method = "doubled"

    def aggregate(self, values: np.ndarray, ctx: rh.Context) -> rh.Aggregation:
        return rh.Aggregation(2.0 * np.nansum(values, axis=1))


class AggregatorPlugin:
    @rh.hookimpl
    def register_aggregators(self, registry: rh.AggregatorRegistry) -> None:
        registry.add(Doubled)


def test_gate_wraps_a_plugin_aggregator_from_the_pipeline_hub() -> None:
    hub = rh.Hub(plugins=[Plugin(), AggregatorPlugin()], entry_points=False)
    spec = {
        "sources": [{"type": "table"}],
        "aggregate": {
            "method": "gate",
            "base": {"method": "doubled"},
            "gates": [{"objective": "harmless", "min": 0.0}],
        },
    }
    with rh.Pipeline.from_spec(spec, hub=hub) as pipe:
        res = pipe.score(samples([[1.0, 2.0], [3.0, -1.0]]))
        assert res.total.tolist() == [6.0, -1.0]
        assert res.diagnostics["base_method"] == "doubled"
        assert pipe.with_aggregator(
            "gate", base={"method": "doubled"}, gates=[{"objective": "helpful", "min": 2.0}]
        ).score(samples([[1.0, 2.0], [3.0, -1.0]])).total.tolist() == [-1.0, 4.0]
    # a hub without the plugin does not know the method, whatever the default registry has
    with pytest.raises(rh.AggregationError, match="base: unknown aggregator 'doubled'"):
        rh.Pipeline.from_spec(spec, hub=rh.Hub(plugins=[Plugin()], entry_points=False))


def test_gate_base_honours_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDHUB_DISABLE_PLUGINS", "rewardhub.aggregate.scalarize")
    hub = rh.Hub(plugins=[Plugin()], entry_points=False)
    assert "maxmin" not in hub.aggregators and "gate" in hub.aggregators
    spec = {
        "sources": [{"type": "table"}],
        "aggregate": {
            "method": "gate",
            "base": {"method": "maxmin"},
            "gates": [{"objective": "harmless", "min": 0.0}],
        },
    }
    with pytest.raises(rh.AggregationError, match="unknown aggregator 'maxmin'"):
        rh.Pipeline.from_spec(spec, hub=hub)


def test_gate_base_config_errors_name_the_base() -> None:
    with (
        building_with(rh.Hub(entry_points=False)),
        pytest.raises(rh.AggregationError, match=r"base \(softmin\): tau"),
    ):
        Gate(
            {
                "base": {"method": "softmin", "tau": -1},
                "gates": [{"objective": "helpful", "min": 0}],
            },
            NAMES,
        )


# -- uncertainty in the units of the normalised values ----------------------------------------


def test_lcb_after_zscore_penalises_in_normalised_units() -> None:
    """z-scored values with a raw std of 10 got a penalty of −10 against a spread of ±1.2."""
    rows: list[list[float | None]] = [[10.0, 1.0], [20.0, 2.0], [30.0, 4.0]]
    std = [[10.0, 0.5], [10.0, 0.5], [0.0, 1.0]]
    with pipeline({"method": "lcb", "k": 1.0}, normalize="zscore") as pipe:
        res = pipe.score(samples(rows, std))
    v = np.array(rows)
    z = (v - v.mean(axis=0)) / v.std(axis=0)
    expect = (z - np.array(std) / v.std(axis=0)).sum(axis=1)
    assert res.total.tolist() == pytest.approx(expect.tolist())
    assert res.diagnostics["per_sample"][0]["std"]["helpful"] == pytest.approx(10 / v[:, 0].std())


@pytest.mark.parametrize("normalize", ["minmax", {"method": "group"}, "running", "none"])
def test_uwo_std_follows_every_affine_normaliser(normalize: object) -> None:
    rows: list[list[float | None]] = [[1.0, 5.0], [3.0, 6.0], [2.0, 9.0], [7.0, 5.5]]
    std = [[0.5, 1.0], [0.1, 0.2], [1.0, 0.3], [0.0, 0.4]]
    with pipeline({"method": "lcb"}, normalize=normalize) as pipe:
        res = pipe.score(samples(rows, std))
        z = res.diagnostics["normalized"]
    # the map is affine per column (and per group, for rows 0-1 and 2-3): its slope is the
    # ratio of differences within a block, and std must scale by exactly that
    v = np.array(rows)
    partner = np.array([1, 0, 3, 2])
    slope = (z - z[partner]) / (v - v[partner])
    got = np.array([[res.diagnostics["per_sample"][i]["std"][o] for o in NAMES] for i in range(4)])
    assert got == pytest.approx(np.abs(slope) * np.array(std))
    assert res.total == pytest.approx((z - got).sum(axis=1))


@pytest.mark.parametrize("method", ["uwo", "lcb"])
def test_rank_with_an_uncertainty_aggregator_is_a_spec_error(method: str) -> None:
    with pytest.raises(rh.SpecError, match="normalizer 'rank' has no consistent transform") as err:
        pipeline({"method": method}, normalize="rank")
    assert err.value.path == "normalize.method"
    with pytest.raises(rh.SpecError) as err:
        pipeline(
            {
                "method": "gate",
                "base": {"method": method},
                "gates": [{"objective": "harmless", "min": 0}],
            },
            normalize=["zscore", "rank"],
        )
    assert err.value.path == "normalize[1].method"
    # with member columns the spread comes from normalised columns: rank is fine there
    pipeline({"method": "uwo", "members": {"r": ["helpful", "harmless"]}}, normalize="rank").close()


def test_missing_std_is_an_error_not_certainty() -> None:
    rows: list[list[float | None]] = [[1.0, 2.0], [3.0, 1.0]]
    std = [[1.0, math.nan], [2.0, math.nan]]  # harmless's source reports no std
    with (
        pipeline({"method": "uwo"}) as pipe,
        pytest.raises(rh.AggregationError, match=r"\['harmless'\] have a value without std"),
    ):
        pipe.score(samples(rows, std))
    # an abstained cell filled by the spec's policy is a constant: exact, no error
    with pipeline({"method": "lcb"}, on_abstain={"fill": 0.0}) as pipe:
        res = pipe.score(samples([[1.0, None]], [[1.0, math.nan]]))
    assert res.total.tolist() == [0.0]
