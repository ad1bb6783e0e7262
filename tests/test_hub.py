from __future__ import annotations

import inspect
import re
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rewardhub as rh
from rewardhub import hookspecs
from rewardhub.cli import build_app
from rewardhub.redteam import SpecHints, audit
from rewardhub.redteam.target import build_target
from rewardhub.testing import plugin_with
from tests.conftest import ROOT, doc_example

HOOKS = [
    name for name, fn in vars(hookspecs).items() if name.startswith("register_") and callable(fn)
]


def test_every_hook_is_documented_with_its_signature() -> None:
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert HOOKS == [
        "register_sources",
        "register_aggregators",
        "register_normalizers",
        "register_commands",
        "register_exploits",
    ]
    for name in HOOKS:
        sig = inspect.signature(getattr(hookspecs, name))
        params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
        heading = f"## {name}({params}) -> {sig.return_annotation}"
        assert heading in text, f"docs/hooks.md lacks the heading {heading!r}"


def test_every_hook_has_a_test() -> None:
    names = set(globals())
    for hook in HOOKS:
        assert f"test_hook_{hook}" in names, f"no test_hook_{hook} in tests/test_hub.py"


def test_hook_register_sources() -> None:
    plugin = doc_example("hooks.md", "register_sources")
    hub = rh.Hub(plugins=[plugin])
    assert "shouting" in hub.sources
    with rh.Pipeline({"sources": [{"type": "shouting"}]}, hub=hub) as pipe:
        res = pipe.score(
            [rh.Sample(prompt="", completion="HEY"), rh.Sample(prompt="", completion="hey")]
        )
    assert res.vector.column("calm").tolist() == [-1.0, 0.0]


def test_hook_register_aggregators() -> None:
    plugin = doc_example("hooks.md", "register_aggregators")
    hub = rh.Hub(plugins=[plugin])
    spec = {
        "sources": [
            {
                "type": "regex",
                "config": {
                    "patterns": [
                        {"pattern": "a", "objective": "a"},
                        {"pattern": "b", "objective": "b"},
                        {"pattern": "c", "objective": "c"},
                    ]
                },
            }
        ],
        "aggregate": {"method": "median"},
    }
    with rh.Pipeline(spec, hub=hub) as pipe:
        res = pipe.score(
            [rh.Sample(prompt="", completion="ab"), rh.Sample(prompt="", completion="c")]
        )
    assert res.total.tolist() == [1.0, 0.0]


def test_hook_register_normalizers() -> None:
    plugin = doc_example("hooks.md", "register_normalizers")
    hub = rh.Hub(plugins=[plugin])
    spec = {
        "sources": [{"type": "length", "config": {"target": 1, "unit": "chars"}}],
        "normalize": {"method": "centre"},
    }
    with rh.Pipeline(spec, hub=hub) as pipe:
        res = pipe.score(
            [rh.Sample(prompt="", completion="x"), rh.Sample(prompt="", completion="xxx")]
        )
    assert res.total.tolist() == [1.0, -1.0]
    assert res.vector.column("brevity").tolist() == [0.0, -2.0]


def test_hook_register_commands() -> None:
    plugin = doc_example("hooks.md", "register_commands")
    app = build_app(rh.Hub(plugins=[plugin]))
    result = CliRunner().invoke(app, ["hello", "--name", "rewards"])
    assert result.exit_code == 0, result.output
    assert "hello rewards" in result.output


def test_hook_register_exploits(tmp_path: Path) -> None:
    plugin = doc_example("hooks.md", "register_exploits")
    hub = rh.Hub(plugins=[plugin])
    assert hub.exploits.get("confidence-claim") is plugin.ConfidenceClaim
    assert hub.exploits.owner("confidence-claim") == "doc_example_register_exploits"
    assert "confidence-claim" not in rh.Hub().exploits  # each hub is fresh
    # a reward that trusts stated certainty pays it: the audit finds the plugin's class
    (tmp_path / "gullible.py").write_text(
        "def gullible(sample):\n    return float('certain' in sample.completion)\n"
    )
    spec = {
        "objectives": [{"name": "trust", "bounds": [0, 1]}],
        "sources": [
            {
                "type": "python",
                "config": {
                    "function": str(tmp_path / "gullible.py:gullible"),
                    "objectives": ["trust"],
                },
            }
        ],
    }
    targets = [build_target({"prompt": "2+2?", "reference": "4"}, SpecHints())]
    with rh.Pipeline(spec, hub=hub) as pipe:
        report = audit(pipe, targets, [plugin.ConfidenceClaim()])
    assert report.by_name("confidence-claim").total.mean_gain == 1.0


# -- registry behaviour ------------------------------------------------------------------------


@rh.reward_source("dup")
def dup_a(sample: rh.Sample) -> float:
    return 1.0


@rh.reward_source("dup")
def dup_b(sample: rh.Sample) -> float:
    return 2.0


def test_duplicate_type_names_are_an_error_naming_both_plugins() -> None:
    with pytest.raises(rh.DuplicateNameError) as info:
        rh.Hub(plugins=[plugin_with(dup_a, name="first"), plugin_with(dup_b, name="second")])
    msg = str(info.value)
    assert "'dup'" in msg and "first" in msg and "second" in msg


def test_builtins_register_through_the_hooks_and_each_hub_is_fresh() -> None:
    a = rh.Hub()
    b = rh.Hub(plugins=[plugin_with(dup_a)])
    assert {"length", "regex", "python"} <= set(a.sources.names())
    assert "dup" in b.sources and "dup" not in a.sources
    assert a.sources.owner("length") == "rewardhub.sources.basic"
    assert {p.name for p in a.plugins() if p.builtin} >= {"rewardhub.sources.basic"}


def test_builtins_can_be_left_out() -> None:
    hub = rh.Hub(builtins=False, entry_points=False, plugins=[plugin_with(dup_a)])
    assert hub.sources.names() == ["dup"]
    assert hub.aggregators.names() == []


def test_registering_a_non_source_names_the_plugin() -> None:
    class Bad:
        __name__ = "bad-plugin"

        @rh.hookimpl
        def register_sources(self, registry: rh.SourceRegistry) -> None:
            registry.add(dict)  # type: ignore[arg-type]

    with pytest.raises(rh.PluginError, match="bad-plugin.*not a subclass of RewardSource"):
        rh.Hub(plugins=[Bad()])


def test_misspelt_hook_fails_loudly() -> None:
    mod = types.ModuleType("typo_plugin")

    @rh.hookimpl
    def register_source(registry: object) -> None:  # missing "s"
        pass

    mod.register_source = register_source  # type: ignore[attr-defined]
    with pytest.raises(rh.PluginError, match="register_source"):
        rh.Hub(plugins=[mod])


def test_unknown_type_lists_close_matches() -> None:
    hub = rh.Hub()
    with pytest.raises(rh.UnknownTypeError) as info:
        hub.sources.get("lenght", "sources[0].type")
    assert "Did you mean 'length'" in str(info.value)
    assert "sources[0].type" in str(info.value)


# -- entry points: broken plugins, env vars -----------------------------------------------------


class _FakeEP:
    def __init__(self, name: str, value: str, dist_name: str, loader: object) -> None:
        self.name = name
        self.value = value
        self._loader = loader
        self.dist = types.SimpleNamespace(metadata={"Name": dist_name}, version="9.9")

    def load(self) -> object:
        if isinstance(self._loader, Exception):
            raise self._loader
        return self._loader


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, eps: list[_FakeEP]) -> None:
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == "rewardhub" else [])


def test_plugin_failing_on_import_is_reported_and_the_others_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = plugin_with(dup_a, name="good")
    _fake_entry_points(
        monkeypatch,
        [
            _FakeEP(
                "broken", "broken_mod", "rewardhub-broken", ImportError("No module named 'nope'")
            ),
            _FakeEP("good", "good_mod", "rewardhub-good", good),
        ],
    )
    with pytest.warns(rh.PluginWarning, match="broken.*No module named 'nope'"):
        hub = rh.Hub()
    assert "dup" in hub.sources
    broken = {p.name: p for p in hub.plugins()}["broken"]
    assert broken.error and "nope" in broken.error
    result = CliRunner().invoke(build_app(hub), ["plugins"])
    assert result.exit_code == 0
    assert "broken plugin" in result.output and "nope" in result.output


def test_plugin_raising_in_a_hook_is_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class Half:
        __name__ = "half"

        @rh.hookimpl
        def register_sources(self, registry: rh.SourceRegistry) -> None:
            registry.add(dup_a)
            raise RuntimeError("boom")

    _fake_entry_points(monkeypatch, [_FakeEP("half", "half", "rewardhub-half", Half())])
    with pytest.warns(rh.PluginWarning, match="half.*boom"):
        hub = rh.Hub()
    assert "dup" not in hub.sources
    assert "length" in hub.sources


def test_load_and_disable_plugins_env(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        _FakeEP("a", "a", "rewardhub-a", plugin_with(dup_a, name="a")),
        _FakeEP("b", "b", "rewardhub-b", plugin_with(dup_b, name="b")),
    ]
    _fake_entry_points(monkeypatch, eps)
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "rewardhub-a")
    assert rh.Hub().sources.get("dup") is dup_a
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")
    assert "dup" not in rh.Hub().sources
    monkeypatch.delenv("REWARDHUB_LOAD_PLUGINS")
    monkeypatch.setenv("REWARDHUB_DISABLE_PLUGINS", "b")
    assert rh.Hub().sources.get("dup") is dup_a
    monkeypatch.setenv("REWARDHUB_DISABLE_PLUGINS", "rewardhub-b, rewardhub.sources.basic")
    assert "length" not in rh.Hub().sources
    monkeypatch.delenv("REWARDHUB_DISABLE_PLUGINS")
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "rewardhub-a,rewardhub-nope")
    with pytest.warns(rh.PluginWarning, match="rewardhub-nope"):
        rh.Hub()


def test_trace_prints_registrations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REWARDHUB_TRACE", "1")
    rh.Hub(entry_points=False)
    assert re.search(
        r"rewardhub\.sources\.basic\.register_sources registered \['length', 'regex'\]",
        capsys.readouterr().err,
    )


def test_hub_does_not_touch_global_state() -> None:
    before = set(sys.modules)
    rh.Hub()
    rh.Hub()
    assert not {m for m in set(sys.modules) - before if m.startswith("torch")}


def test_hooks_are_called_through_pluggy_so_wrappers_run() -> None:
    seen: list[list[str]] = []

    class Watcher:
        __name__ = "watcher"

        @rh.hookimpl(hookwrapper=True)
        def register_sources(self, registry: rh.SourceRegistry):  # type: ignore[no-untyped-def]
            before = set(registry.names())
            yield
            seen.append(sorted(set(registry.names()) - before))

    hub = rh.Hub(plugins=[Watcher(), plugin_with(dup_a, name="mine")], entry_points=False)
    assert ["dup"] in seen and ["length", "regex"] in seen  # once around each plugin's call
    assert hub.sources.owner("dup") == "mine"  # attribution survives the pluggy calls
    assert hub.sources.owner("length") == "rewardhub.sources.basic"


def test_trace_reports_hook_calls_through_monitoring_and_source_times(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REWARDHUB_TRACE", "1")
    hub = rh.Hub(plugins=[plugin_with(dup_a, name="mine")], entry_points=False)
    err = capsys.readouterr().err
    assert re.search(r"mine\.register_sources registered \['dup'\] in [\d.]+ ms", err)
    with rh.Pipeline({"sources": [{"id": "d", "type": "dup"}]}, hub=hub) as pipe:
        pipe.score([rh.Sample(prompt="", completion="x")] * 3)
    assert re.search(
        r"source 'd' \(dup\) scored 1 sample\(s\) in [\d.]+ ms", capsys.readouterr().err
    )


def test_plugins_json_lists_each_type_with_its_summary() -> None:
    import json

    out = CliRunner().invoke(build_app(rh.Hub(entry_points=False)), ["plugins", "--json"])
    infos = {p["name"]: p for p in json.loads(out.output)}
    basic = infos["rewardhub.sources.basic"]
    assert basic["label"] == "built-in"
    assert {"kind": "source", "name": "length", "summary": basic["types"][0]["summary"]} in basic[
        "types"
    ]
    assert [t["name"] for t in basic["types"]] == ["length", "regex"] and basic["types"][0][
        "summary"
    ]
