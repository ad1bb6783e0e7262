"""An example third-party rewardhub plugin: the ``politeness`` source.

Installed with ``pip install plugins/rewardhub-example``, it is found through the
``rewardhub`` entry-point group; nothing in rewardhub knows its name.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

import rewardhub as rh


class PolitenessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    markers: list[str] = Field(
        default_factory=lambda: ["please", "thank you", "thanks", "sorry", "glad"],
        min_length=1,
        description="phrases that count as polite (case-insensitive)",
    )


class Politeness(rh.RewardSource):
    """Fraction of politeness markers present in the completion."""

    type = "politeness"
    objectives = ("politeness",)
    Config = PolitenessConfig

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        markers = [m.lower() for m in self.config.markers]
        return [[sum(m in s.completion.lower() for m in markers) / len(markers)] for s in samples]


@rh.hookimpl
def register_sources(registry: rh.SourceRegistry) -> None:
    registry.add(Politeness)
