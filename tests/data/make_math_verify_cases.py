"""Regenerate math_verify_cases.json: the gold/prediction/expected cases of Math-Verify's own
test suite, with the options each test passes to the library.

Origin: https://github.com/huggingface/Math-Verify (Apache-2.0), ``tests/*.py`` at the commit
named in the output. Each parametrized test that compares a gold and a prediction
(``compare_strings(gold, pred, ...)`` or ``verify(parse(gold), parse(pred))``) contributes its
cases; ``options`` are the library's own names: ``targets`` (``latex``/``expr``),
``float_rounding``, ``strict``, ``allow_set_relation_comp``, ``boxed_match_priority``.

Run: python tests/data/make_math_verify_cases.py <Math-Verify checkout> <commit> \
        > tests/data/math_verify_cases.json
"""

import ast
import json
import math
import sys
from pathlib import Path

# compare_strings() in tests/test_all.py: LatexExtractionConfig(boxed_match_priority=0)
COMPARE_DEFAULTS = {
    "targets": ["latex", "expr"],
    "float_rounding": 6,
    "strict": True,
    "allow_set_relation_comp": False,
    "boxed_match_priority": 0,
}
# parse()/verify() called with the library's defaults (tests/test_yujianll.py)
LIBRARY_DEFAULTS = {**COMPARE_DEFAULTS, "boxed_match_priority": 50}
KWARG = {
    "match_types": "targets",
    "precision": "float_rounding",
    "strict": "strict",
    "allow_set_relation_comp": "allow_set_relation_comp",
}


def _value(node: ast.expr) -> object:
    return eval(compile(ast.Expression(node), "<case>", "eval"), {"math": math})


def _cases(path: Path) -> list[dict[str, object]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[dict[str, object]] = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
        compare = next((c for c in calls if getattr(c.func, "id", "") == "compare_strings"), None)
        verify = next((c for c in calls if getattr(c.func, "id", "") == "verify"), None)
        if compare is None and verify is None:
            continue  # parse-only tests (string extraction) have no gold to compare with
        params = None
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize":
                names = [n.strip() for n in str(_value(dec.args[0])).split(",")]
                params = (names, _value(dec.args[1]))
        if params is None:  # test_precision: one literal compare_strings(...) == expected
            if compare is None or not isinstance(fn.body[-1], ast.Assert):
                continue
            test = fn.body[-1].test
            assert isinstance(test, ast.Compare)
            names = ["gold", "pred", "expected"]
            params = (
                names,
                [(*(_value(a) for a in compare.args[:2]), _value(test.comparators[0]))],
            )
        names, rows = params
        for row in rows:
            env = dict(zip(names, row))
            opts = dict(COMPARE_DEFAULTS if compare is not None else LIBRARY_DEFAULTS)
            for kw in compare.keywords if compare is not None else []:
                opts[KWARG[kw.arg]] = (
                    env[kw.value.id] if isinstance(kw.value, ast.Name) else _value(kw.value)
                )
            expected = env.get("expected", env.get("result"))
            out.append(
                {
                    "test": f"{path.name}::{fn.name}",
                    "gold": env["gold"],
                    "pred": env["pred"],
                    "expected": int(expected),
                    "options": opts,
                }
            )
    return out


def main() -> None:
    root, commit = Path(sys.argv[1]), sys.argv[2]
    cases = [c for f in sorted((root / "tests").glob("test_*.py")) for c in _cases(f)]
    doc = {
        "origin": f"https://github.com/huggingface/Math-Verify/tree/{commit}/tests",
        "license": "Apache-2.0",
        "cases": cases,
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
