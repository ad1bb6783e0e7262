"""The two conflicting objectives of the steering experiment (benchmarks/steering.py).

Both lie in [0, 1] so that the worst objective of a text is meaningful:

- ``brevity``: 1 at the target length (100 characters), falling linearly to 0 at 0 and at
  200 characters. Cheap, and a stand-in for "be concise".
- ``coverage``: the fraction of explanation markers the text uses ("because", "for example",
  ...). Covering more of them takes more words, so it pulls against brevity.
"""

from __future__ import annotations

import re

import rewardhub as rh

TARGET = 100
MARKERS = ("because", "for example", "which", "means", "so ", "also", "such as", "when")


def rewards(sample: rh.Sample) -> list[float]:
    text = sample.completion
    brevity = max(0.0, 1.0 - abs(len(text) - TARGET) / TARGET)
    low = re.sub(r"\s+", " ", text.lower())
    coverage = sum(m in low for m in MARKERS) / len(MARKERS)
    return [brevity, coverage]
