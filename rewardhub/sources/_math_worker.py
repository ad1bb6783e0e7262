"""Worker process of the ``math-verify`` source: ``python -m rewardhub.sources._math_worker``.

Reads one JSON request per line (see ``MathVerify.score``: the answer region, the reference,
the library's options under its own names and ``require_evaluated``) and answers
``{"found", "correct", "answer"}``, ``{"found", "correct", "unevaluated"}`` (an answer
``require_evaluated`` refuses), ``{"timeout": true}`` or ``{"gold_error": ...}``. Each
request runs under a ``setitimer`` alarm of ``timeout_s`` (math-verify's own alarms are turned
off: they share the same timer). The parent kills a worker that does not answer in time.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import replace
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

    from rewardhub.sources._math_evaluated import refuses
    from rewardhub.sources._math_text import (
        LENIENT,
        balanced,
        extract_answer,
        mark_hedges,
        prepare_gold,
    )

    # we time out ourselves; math-verify would warn once that its timeouts are off
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _on_alarm)

    @lru_cache(maxsize=64)
    def targets(names: tuple[str, ...], boxed: int, units: bool) -> tuple[Any, ...]:
        out: list[Any] = []
        for name in names:
            if name == "latex":
                norm = LatexExtractionConfig().normalization_config
                out.append(LatexExtractionConfig(
                    boxed_match_priority=boxed, normalization_config=replace(norm, units=units)
                ))  # fmt: skip
            else:
                out.append(ExprExtractionConfig())
        return tuple(out)

    def parse(text: str, req: dict[str, Any]) -> list[Any]:
        found = math_verify.parse(
            text,
            targets(tuple(req["targets"]), req["boxed_match_priority"], req["units"]),
            extraction_mode=req["extraction_mode"],
            parsing_timeout=None,
        )
        return list(found)

    def parse_lenient(text: str, req: dict[str, Any]) -> list[Any]:
        """An answer a lenient extractor cut out: bare text is LaTeX (``$...$``)."""
        if "$" not in text and "\\boxed" not in text and "\\(" not in text and "\\[" not in text:
            parsed = parse(f"${' '.join(text.split())}$", req)
            if parsed:
                return parsed
        return parse(text, req)

    gold_cache: dict[tuple[Any, ...], tuple[Any, ...] | str] = {}

    def parse_gold(req: dict[str, Any]) -> tuple[Any, ...] | str:
        key = (req["gold"], tuple(req["targets"]), req["boxed_match_priority"], req["units"],
               req["extraction_mode"])  # fmt: skip
        if key not in gold_cache:
            if len(gold_cache) > 4096:
                gold_cache.clear()
            prepared = prepare_gold(req["gold"])
            if prepared.error is not None:
                gold_cache[key] = prepared.error
            else:
                gold = parse(prepared.text, req)
                # a reference only the library's string fallback holds (x = 1/2, x = 3) is
                # still compared as text, as math-verify does; a broken one (\\frac{) is not
                ok = any(not isinstance(g, str) for g in gold) or any(map(balanced, gold))
                gold_cache[key] = (
                    tuple(gold) if ok else f"math-verify could not parse {req['gold'][:80]!r}"
                )
        return gold_cache[key]

    def handle(req: dict[str, Any]) -> dict[str, Any]:
        signal.setitimer(signal.ITIMER_REAL, float(req["timeout_s"]))
        try:
            gold = parse_gold(req)
            if isinstance(gold, str):
                return {"gold_error": gold}
            got = extract_answer(req["completion"], req["extract"], len(req["completion"]) + 1)
            if got is None:
                return {"found": False, "correct": False}
            how, text = got
            pred = parse_lenient(text, req) if how in LENIENT else parse(mark_hedges(text), req)
            if not pred:
                return {"found": how in LENIENT, "correct": False, "answer": text[:200]}
            if req.get("require_evaluated", True):
                refused = refuses(list(gold), pred)
                if refused is not None:  # 52 + 30 against 82: the value was never stated
                    shown = next((p for p in reversed(pred) if isinstance(p, str)), refused)
                    return {"found": True, "correct": False, "unevaluated": str(shown)[:200],
                            "extractor": how}  # fmt: skip
            ok = math_verify.verify(
                list(gold),
                pred,
                float_rounding=req["float_rounding"],
                strict=req["strict"],
                allow_set_relation_comp=req["allow_set_relation_comp"],
                timeout_seconds=None,
            )
            return {"found": True, "correct": bool(ok), "answer": str(pred[-1])[:200],
                    "extractor": how}  # fmt: skip
        except _Timeout:
            return {"timeout": True}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    return handle


if __name__ == "__main__":
    serve(_setup)
