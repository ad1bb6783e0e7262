"""Write a source in a few lines, register it on a Hub and check it with the test kit."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

import rewardhub as rh
from rewardhub.testing import check_source


class KeywordConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in a spec is an error, not a default
    word: str = "because"


@rh.reward_source("explains", objectives=["explains"], config=KeywordConfig)
def explains(sample: rh.Sample, config: KeywordConfig) -> float | None:
    """1 when the completion gives a reason, None (abstain) on an empty completion."""
    if not sample.completion:
        return None
    return float(config.word in sample.completion.lower())


class Shouting(rh.RewardSource):
    """A class-based source with two objectives."""

    type = "shouting"
    objectives = ("calm", "exclaims")

    def score(self, samples: list[rh.Sample]) -> rh.Scores:
        return [[-float(s.completion.isupper()), float("!" in s.completion)] for s in samples]


check_source(explains)
check_source(Shouting)

hub = rh.Hub(plugins=[explains, Shouting])  # classes and decorated functions register directly
spec = {
    "sources": [{"type": "explains", "config": {"word": "since"}}, {"type": "shouting"}],
    "aggregate": {"method": "weighted", "weights": {"exclaims": 0.0}},
}
with rh.Pipeline(spec, hub=hub) as pipe:
    res = pipe.score(
        [
            rh.Sample(prompt="why?", completion="Since the sky scatters blue light."),
            rh.Sample(prompt="why?", completion="NO IDEA!"),
            rh.Sample(prompt="why?", completion=""),
        ]
    )
for rec in res.to_records():
    print(rec)
assert res.vector.values[1].tolist() == [0.0, -1.0, 1.0]
assert res.vector.reasons[2] == {"explains": "abstained"}
