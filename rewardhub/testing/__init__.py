"""A test kit for plugin authors; it runs with or without pytest.

- :func:`check_source`, :func:`check_aggregator`, :func:`check_normalizer` run the
  conformance checks every registered type must pass; a failure says what to fix;
- :func:`rewardhub_conformance` turns them into a parametrised pytest test in one line;
- :func:`make_samples` and :func:`edge_samples` build varied and awkward samples;
- the pytest plugin :mod:`rewardhub.testing.pytest_plugin` (loaded through ``pytest11`` when
  pytest is installed) adds the fixtures ``rewardhub_hub`` (a fresh Hub), ``make_pipeline``
  (spec dict → Pipeline, closed after the test) and ``make_samples``.

To register classes in a test, pass them to the hub: ``rh.Hub(plugins=[MySource])``.
"""

from __future__ import annotations

from rewardhub.class_plugins import plugin_with  # kept importable here for older tests
from rewardhub.testing._common import UNKNOWN_FIELD, CheckSkipped, ConformanceError
from rewardhub.testing.conformance import conformance_subject, rewardhub_conformance
from rewardhub.testing.method_checks import (
    AggregatorCheck,
    NormalizerCheck,
    check_aggregator,
    check_normalizer,
)
from rewardhub.testing.samples import DEFAULT_SAMPLES, edge_samples, make_samples
from rewardhub.testing.source_checks import SOURCE_CHECKS, SourceCheck, check_source

# An install whose ``pytest11`` entry point still names this package (made before the fixtures
# moved) registers it as the plugin; pytest then loads the fixture module from here. A list of
# names: importing this package never imports pytest.
pytest_plugins = ["rewardhub.testing.pytest_plugin"]

__all__ = [
    "DEFAULT_SAMPLES",
    "SOURCE_CHECKS",
    "UNKNOWN_FIELD",
    "AggregatorCheck",
    "CheckSkipped",
    "ConformanceError",
    "NormalizerCheck",
    "SourceCheck",
    "check_aggregator",
    "check_normalizer",
    "check_source",
    "conformance_subject",
    "edge_samples",
    "make_samples",
    "plugin_with",
    "rewardhub_conformance",
]
