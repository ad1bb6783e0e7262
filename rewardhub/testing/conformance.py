"""One subject, every check: :func:`rewardhub_conformance` makes them a pytest test."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewardhub.aggregate.base import Aggregator, Normalizer
from rewardhub.source import RewardSource
from rewardhub.testing._common import CheckSkipped
from rewardhub.testing.method_checks import AggregatorCheck, NormalizerCheck
from rewardhub.testing.source_checks import SourceCheck
from rewardhub.types import Sample


def conformance_subject(
    cls: type[Any], config: Mapping[str, Any] | None = None, samples: Sequence[Sample] | None = None
) -> SourceCheck | AggregatorCheck | NormalizerCheck:
    """The checks for ``cls`` (a source, aggregator or normalizer class): ``.checks()`` maps
    each check's name to a callable; ``.close()`` releases what they built."""
    if issubclass(cls, RewardSource):
        return SourceCheck(cls, config, samples)
    if issubclass(cls, Aggregator):
        return AggregatorCheck(cls, config, 3)
    if issubclass(cls, Normalizer):
        return NormalizerCheck(cls, config, 3)
    raise TypeError(f"{cls!r} is not a RewardSource, Aggregator or Normalizer subclass")


def rewardhub_conformance(
    cls: type[Any],
    config: Mapping[str, Any] | None = None,
    samples: Sequence[Sample] | None = None,
) -> Callable[[str], None]:
    """A pytest test, parametrised over the conformance checks, in one line::

    test_politeness = rewardhub_conformance(Politeness, {"markers": ["please"]})
    """
    import pytest  # only here: the rest of the kit runs without pytest

    subject = conformance_subject(cls, config, samples)
    checks = subject.checks()

    @pytest.mark.parametrize("check", list(checks))
    def test_rewardhub_conformance(check: str) -> None:
        try:
            checks[check]()
        except CheckSkipped as why:
            pytest.skip(str(why))
        finally:
            subject.close()

    return test_rewardhub_conformance
