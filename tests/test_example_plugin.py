"""The separately installed plugin in plugins/rewardhub-example (make test installs it)."""

from __future__ import annotations

import pytest

import rewardhub as rh
from rewardhub.testing import check_source, plugin_with


def test_installed_plugin_is_discovered_through_its_entry_point() -> None:
    hub = rh.Hub()
    assert "politeness" in hub.sources
    info = {p.name: p for p in hub.plugins()}["politeness"]
    assert info.distribution == "rewardhub-example" and info.sources == ["politeness"]
    with rh.Pipeline({"sources": [{"type": "politeness"}]}, hub=hub) as pipe:
        res = pipe.score([rh.Sample(prompt="", completion="Thanks, glad to help. Sorry!")])
    assert res.vector.column("politeness").tolist() == [0.6]


def test_load_plugins_env_selects_distributions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "")
    assert "politeness" not in rh.Hub().sources
    monkeypatch.setenv("REWARDHUB_LOAD_PLUGINS", "rewardhub-example")
    assert "politeness" in rh.Hub().sources
    monkeypatch.delenv("REWARDHUB_LOAD_PLUGINS")
    monkeypatch.setenv("REWARDHUB_DISABLE_PLUGINS", "rewardhub-example")
    assert "politeness" not in rh.Hub().sources


def test_a_second_politeness_source_is_a_duplicate_error() -> None:
    @rh.reward_source("politeness")
    def impostor(sample: rh.Sample) -> float:
        return 0.0

    with pytest.raises(rh.DuplicateNameError, match="'politeness'.*'politeness'.*'local'"):
        rh.Hub(plugins=[plugin_with(impostor, name="local")])


def test_plugin_passes_the_conformance_kit() -> None:
    check_source(rh.Hub().sources.get("politeness"), {"markers": ["hi", "there"]})
