"""``rewardhub redteam``: audit a reward spec against known reward hacks.

Exploit classes (text, judge, code; more from plugins through ``register_exploits``) build
attack completions for each sample; :func:`audit` scores them with the pipeline beside two
baselines, the reference answer and an honest wrong answer, and reports per class and
objective how much each hack out-earns the wrong answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewardhub._lazy import lazy_getattr
from rewardhub.redteam.exploit import Attack, Exploit
from rewardhub.redteam.target import SpecHints, Target

if TYPE_CHECKING:
    from rewardhub.redteam.audit import audit
    from rewardhub.redteam.report import AuditReport, ClassReport, Stat

__getattr__ = lazy_getattr(
    globals(),
    {
        "audit": "rewardhub.redteam.audit",
        "AuditReport": "rewardhub.redteam.report",
        "ClassReport": "rewardhub.redteam.report",
        "Stat": "rewardhub.redteam.report",
    },
)

__all__ = [
    "Attack",
    "AuditReport",
    "ClassReport",
    "Exploit",
    "SpecHints",
    "Stat",
    "Target",
    "audit",
]
