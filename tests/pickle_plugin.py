"""A plugin module importable by path (``tests.pickle_plugin``): pipelines using it are shipped
to process pools in tests/test_engine_loop.py."""

from __future__ import annotations

import os

import rewardhub as rh


class Pid(rh.RewardSource):
    """The length of the completion, and the id of the process that scored it."""

    type = "pid-length"
    objectives = ("length", "pid")

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[float(len(s.completion)), float(os.getpid())] for s in samples]


@rh.hookimpl
def register_sources(registry: rh.SourceRegistry) -> None:
    registry.add(Pid)
