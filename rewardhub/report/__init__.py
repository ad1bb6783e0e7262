"""The HTML report of scored samples, evaluations and best-of-n curves (``rewardhub report``),
and the charts it shares with the server's ``/dashboard``."""

from __future__ import annotations

from rewardhub.report.data import ScoredData, front_2d
from rewardhub.report.html import build_report

__all__ = ["ScoredData", "build_report", "front_2d"]
