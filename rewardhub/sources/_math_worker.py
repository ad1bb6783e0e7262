"""Worker process of the ``math-verify`` source: ``python -m rewardhub.sources._math_worker``.

Reads one JSON request per line (see ``MathVerify.score``) and answers
``{"found", "correct", "answer"}``, ``{"timeout": true}`` or ``{"gold_error": ...}``. Each
request runs under a ``setitimer`` alarm of ``timeout_s`` (math-verify's own alarms are turned
off: they share the same timer). The parent kills a worker that does not answer in time.
"""

from __future__ import annotations

import logging
import signal
from functools import lru_cache
from typing import Any

from rewardhub.workers import serve


class _Timeout(BaseException):  # BaseException: math-verify's `except Exception` must not eat it
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _setup() -> Any:
    import math_verify
    import math_verify.grader
    import math_verify.parser
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    from rewardhub.sources.math import extract_answer

    # we time out ourselves; math-verify would warn once that its timeouts are off
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_alarm)

    latex_first = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]

    def parse(text: str, fallback: str = "first_match") -> list[Any]:
        kw: dict[str, Any] = {"fallback_mode": fallback, "parsing_timeout": None}
        if "$" not in text and "\\boxed" not in text and "\\(" not in text and "\\[" not in text:
            parsed = math_verify.parse(f"${text}$", latex_first, **kw)
            if parsed:
                return list(parsed)
        return list(math_verify.parse(text, latex_first, **kw))

    @lru_cache(maxsize=4096)
    def parse_gold(text: str) -> tuple[Any, ...]:
        return tuple(parse(text, fallback="no_fallback"))  # a gold that does not parse is malformed

    def handle(req: dict[str, Any]) -> dict[str, Any]:
        signal.setitimer(signal.ITIMER_REAL, float(req["timeout_s"]))
        try:
            gold = parse_gold(req["gold"])
            if not gold:
                return {"gold_error": f"math-verify could not parse {req['gold'][:80]!r}"}
            got = extract_answer(req["completion"], req["extract"], len(req["completion"]) + 1)
            if got is None:
                return {"found": False, "correct": False}
            how, text = got
            pred = parse(text)
            if not pred:
                return {"found": True, "correct": False, "answer": text[:200]}
            ok = math_verify.verify(
                list(gold),
                pred,
                float_rounding=req["float_rounding"],
                strict=req["strict"],
                timeout_seconds=None,
            )
            return {"found": True, "correct": bool(ok), "answer": text[:200], "extractor": how}
        except _Timeout:
            return {"timeout": True}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    return handle


if __name__ == "__main__":
    serve(_setup)
