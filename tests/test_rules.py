"""Rule sources: json-schema, keywords, format, repetition, language (hand-worked cases)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from rewardhub.source import Abstain, Fail, RewardSource
from rewardhub.sources.format import Format
from rewardhub.sources.json_schema import JsonSchema
from rewardhub.sources.keywords import Keywords
from rewardhub.sources.language import Language
from rewardhub.sources.repetition import Repetition
from rewardhub.testing import check_source

HUGE = "word " * 1_000_000  # 5 MB
SURROGATE = "\udcff broken \ud800 text"


def s(completion: str, prompt: str = "p", **metadata: Any) -> rh.Sample:
    return rh.Sample(prompt=prompt, completion=completion, metadata=metadata)


def rows(source: RewardSource, *completions: str) -> list[Any]:
    out = source.score([s(c) for c in completions])
    assert isinstance(out, list)
    return out


def col(source: RewardSource, *completions: str) -> list[float]:
    return [r[0] for r in rows(source, *completions)]


# -- json-schema ---------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
}


def test_json_schema_hand_cases() -> None:
    src = JsonSchema({"schema": SCHEMA})
    assert src.output_objectives == ("valid_json", "schema_valid")
    assert rows(
        src,
        '{"name": "Ada", "age": 36}',  # valid and conforming
        '  {"name": "Ada"}\n',  # whitespace around is fine
        '{"age": 36}',  # valid JSON, missing required field
        '{"name": "Ada", "age": -1}',  # violates minimum
        "{'name': 'Ada'}",  # not JSON
        "",  # empty
        'Sure! ```json\n{"name": "Ada"}\n``` hope it helps',  # fenced
        '```\n{"name": "Ada"}\n```',  # bare fence
    ) == [
        [1.0, 1.0],
        [1.0, 1.0],
        [1.0, 0.0],
        [1.0, 0.0],
        [0.0, 0.0],
        [0.0, 0.0],
        [1.0, 1.0],
        [1.0, 1.0],
    ]


def test_json_schema_extract_modes() -> None:
    fenced = '```json\n{"name": "Ada"}\n```'
    raw = '{"name": "Ada"}'
    assert rows(JsonSchema({"schema": SCHEMA, "extract": "raw"}), fenced, raw) == [
        [0.0, 0.0],
        [1.0, 1.0],
    ]
    assert rows(JsonSchema({"schema": SCHEMA, "extract": "fence"}), fenced, raw) == [
        [1.0, 1.0],
        [0.0, 0.0],
    ]
    # a ```python fence is not JSON: auto falls back to the whole text, which is not JSON
    assert rows(JsonSchema({"schema": SCHEMA}), '```python\n{"name": "Ada"}\n```') == [[0.0, 0.0]]


def test_json_schema_without_schema_checks_json_only() -> None:
    src = JsonSchema({})
    assert src.output_objectives == ("valid_json",)
    assert col(src, "[1, 2]", "null", "nope") == [1.0, 1.0, 0.0]


def test_json_schema_from_file_relative_to_spec(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "person.json").write_text(json.dumps(SCHEMA))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "sources:\n  - type: json-schema\n    config: {schema_file: schemas/person.json}\n"
    )
    with rh.Pipeline.from_yaml(spec, hub=rh.Hub()) as pipe:
        res = pipe.vector([s('{"name": "Ada"}'), s('{"nom": 1}')])
    assert res.values.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_json_schema_format_checker() -> None:
    schema = {"type": "string", "format": "email"}
    assert col(JsonSchema({"schema": schema}), '"nope"') == [1.0]
    assert [
        r[1]
        for r in rows(JsonSchema({"schema": schema, "format_checker": True}), '"nope"', '"a@b.co"')
    ] == [0.0, 1.0]


def test_malformed_schema_is_a_spec_error_naming_the_source() -> None:
    bad = {
        "sources": [{"type": "length"}, {"type": "json-schema", "config": {"schema": {"type": 12}}}]
    }
    with pytest.raises(rh.SpecError, match=r"sources\[1\].*malformed schema at type"):
        rh.Pipeline(bad, hub=rh.Hub())


def test_schema_file_errors_are_spec_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(rh.SpecError, match="is not valid"):
        rh.Pipeline(
            {
                "sources": [
                    {
                        "type": "json-schema",
                        "config": {"schema_file": str(tmp_path / "broken.json")},
                    }
                ]
            },
            hub=rh.Hub(),
        )
    with pytest.raises(rh.SpecError, match="cannot read schema_file"):
        rh.Pipeline(
            {
                "sources": [
                    {"type": "json-schema", "config": {"schema_file": str(tmp_path / "none.json")}}
                ]
            },
            hub=rh.Hub(),
        )


def test_json_schema_bad_input_fails_or_scores_zero() -> None:
    src = JsonSchema({"schema": SCHEMA})
    out = rows(src, "[" * 100_000 + "]" * 100_000, SURROGATE, '{"name": "\udcff"}')
    # nesting that deep is the completion's doing: a failed check, not an abstention
    assert isinstance(out[0], Fail) and "nested too deeply" in out[0].reason
    assert out[1] == [0.0, 0.0]  # not JSON: truly wrong
    assert out[2] == [1.0, 1.0]  # a lone surrogate inside a JSON string is still a string


def test_json_schema_unresolvable_ref_abstains() -> None:
    src = JsonSchema({"schema": {"$ref": "https://example.invalid/schema.json"}})
    out = rows(src, "{}")
    assert isinstance(out[0], Abstain) and "schema could not be applied" in out[0].reason


# -- keywords ------------------------------------------------------------------------------


def test_keywords_required_modes() -> None:
    text = "The Cat sat on the mat."
    req = ["cat", "mat", "dog"]
    assert col(Keywords({"required": req}), text) == [pytest.approx(2 / 3)]
    assert col(Keywords({"required": req, "required_mode": "all"}), text) == [0.0]
    assert col(Keywords({"required": req, "required_mode": "any"}), text) == [1.0]
    assert col(Keywords({"required": ["cat", "mat"], "required_mode": "all"}), text) == [1.0]


def test_keywords_case_and_word_boundaries() -> None:
    assert col(Keywords({"required": ["cat"]}), "cats", "CAT!", "concat", "a cat") == [0, 1, 0, 1]
    assert col(Keywords({"required": ["cat"], "whole_word": False}), "cats", "concat") == [1, 1]
    assert col(Keywords({"required": ["cat"], "case_sensitive": True}), "CAT", "cat") == [0, 1]
    # phrases match across any whitespace, and punctuation keywords work with whole_word
    assert col(Keywords({"required": ["thank you"]}), "Thank\n  you!", "thankyou") == [1, 0]
    assert col(Keywords({"required": ["c++"]}), "I like C++.", "c+++") == [1, 1]


def test_keywords_forbidden() -> None:
    src = Keywords({"forbidden": ["password", "api key"]})
    assert src.output_objectives == ("no_forbidden",)
    assert col(src, "all good", "my PASSWORD is", "the API  key and password") == [1, 0, 0]
    frac = Keywords({"forbidden": ["password", "api key"], "forbidden_mode": "fraction"})
    assert col(frac, "all good", "my password", "api key and password") == [1, 0.5, 0]


def test_keywords_both_lists_give_two_objectives() -> None:
    src = Keywords({"required": ["answer"], "forbidden": ["sorry"]})
    assert src.output_objectives == ("keywords", "no_forbidden")
    assert rows(src, "the answer", "sorry, no answer", "sorry") == [[1, 1], [1, 0], [0, 0]]


def test_keywords_on_the_prompt() -> None:
    src = Keywords({"required": ["math"], "field": "prompt"})
    assert src.score([s("x", prompt="a math question"), s("math", prompt="poem")]) == [[1.0], [0.0]]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"required": ["  "]},
        {"required": ["a"], "forbidden": ["b"], "forbidden_objective": "keywords"},
    ],
)
def test_keywords_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(rh.SpecError):
        rh.Pipeline({"sources": [{"type": "keywords", "config": config}]}, hub=rh.Hub())


# -- format --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "strict", "partial"),
    [
        ("<think>2+2 is 4</think>\n<answer>4</answer>", 1.0, 1.0),
        ("  <think>x</think><answer>4</answer>\n", 1.0, 1.0),  # whitespace is flexible
        ("<think>x</think>\n\n<answer>4</answer>", 1.0, 1.0),
        ("<think></think><answer>4</answer>", 0.0, 1.0),  # {+}: the think part is empty
        ("<think>x</think><answer>  </answer>", 0.0, 1.0),  # blank answer
        ("Sure. <think>x</think><answer>4</answer>", 0.0, 1.0),  # text outside the template
        ("<think>x</think><answer>4</answer> done", 0.0, 1.0),
        ("<answer>4</answer><think>x</think>", 0.0, 0.5),  # wrong order: <think>, </think>
        ("<think>x</think>", 0.0, 0.5),
        ("<think>x", 0.0, 0.25),
        ("4", 0.0, 0.0),
        ("<think>a</think><think>b</think><answer>4</answer>", 0.0, 1.0),  # tags repeated
    ],
)
def test_format_tags_strict_and_partial(completion: str, strict: float, partial: float) -> None:
    assert col(Format({"tags": ["think", "answer"]}), completion) == [strict]
    assert col(Format({"tags": ["think", "answer"], "mode": "partial"}), completion) == [partial]


def test_format_template_holes_and_single() -> None:
    src = Format({"template": "<think>{*}</think>\n<answer>{*}</answer>"})
    assert col(src, "<think></think><answer></answer>") == [1.0]  # {*} may be empty
    repeated = "<think>a</think><think>b</think><answer>4</answer>"
    assert col(src, repeated) == [0.0]
    assert col(
        Format({"template": "<think>{*}</think>\n<answer>{*}</answer>", "single": False}), repeated
    ) == [1.0]
    # a leading {*} allows a preamble; a plain-text template
    assert col(
        Format({"template": "{*}The answer is {+}."}), "Well. The  answer is 4.", "The answer is ."
    ) == [1, 0]
    assert Format({"template": "Answer: {+}"}).config.literal_parts() == ["Answer:"]
    assert Format({"tags": ["a", "b"]}).config.literal_parts() == ["<a>", "</a>", "<b>", "</b>"]


@pytest.mark.parametrize(
    "config",
    [{}, {"tags": []}, {"tags": ["a b"]}, {"template": "{*}"}, {"template": "x", "tags": ["a"]}],
)
def test_format_bad_config(config: dict[str, Any]) -> None:
    with pytest.raises(rh.SpecError):
        rh.Pipeline({"sources": [{"type": "format", "config": config}]}, hub=rh.Hub())


# -- repetition ----------------------------------------------------------------------------


def test_repetition_hand_cases() -> None:
    src = Repetition({})  # n = 3
    # "a b c a b c a b c": 7 trigrams, 3 distinct (abc, bca, cab) → 4 repeated → −4/7
    assert col(src, "a b c a b c a b c") == [pytest.approx(-4 / 7)]
    assert col(src, "the cat sat on the mat") == [0.0]  # no trigram repeats
    assert col(src, "hi", "one two three") == [0.0, 0.0]  # too short to repeat
    assert col(src, "A b C a B c") == [pytest.approx(-1 / 4)]  # case-insensitive by default
    assert col(Repetition({"lowercase": False}), "A b C a B c") == [0.0]
    # unigrams: "x x x x" → 4 unigrams, 1 distinct → −3/4; scaled by 2
    assert col(Repetition({"n": 1, "scale": 2.0}), "x x x x") == [pytest.approx(-1.5)]
    assert col(src, "go " * 1000) == [pytest.approx(-(998 - 1) / 998)]


# -- language ------------------------------------------------------------------------------

EN = "This is a perfectly ordinary English sentence about the weather today."
FR = "Ceci est une phrase tout à fait ordinaire en français sur la météo."


def test_language_match_and_probability() -> None:
    src = Language({"expected": "en"})
    assert col(src, EN, FR) == [1.0, 0.0]
    assert col(Language({"expected": ["en", "fr"]}), EN, FR) == [1.0, 1.0]
    prob = Language({"expected": "fr", "mode": "probability", "languages": ["en", "fr", "de"]})
    p_en, p_fr = col(prob, EN, FR)
    assert p_en < 0.1 and p_fr > 0.9


def test_language_from_metadata_and_abstentions() -> None:
    src = Language({})
    out = src.score([s(EN, language="en"), s(EN, language="fr"), s(EN), s("ok", language="en")])
    assert out[:2] == [[1.0], [0.0]]
    assert isinstance(out[2], Abstain) and "no expected language" in out[2].reason
    assert isinstance(out[3], Abstain) and "too little text" in out[3].reason


def test_language_unknown_code_is_a_spec_error() -> None:
    with pytest.raises(rh.SpecError, match="unknown language code"):
        rh.Pipeline({"sources": [{"type": "language", "config": {"expected": "xx"}}]}, hub=rh.Hub())


# -- all rules: conformance, bad input, registration ---------------------------------------

CONFIGS: list[tuple[type[RewardSource], dict[str, Any]]] = [
    (JsonSchema, {"schema": SCHEMA}),
    (Keywords, {"required": ["cat"], "forbidden": ["dog"]}),
    (Format, {"tags": ["think", "answer"]}),
    (Format, {"tags": ["think", "answer"], "mode": "partial"}),
    (Repetition, {"n": 2}),
    (Language, {"expected": "en"}),
]


@pytest.mark.parametrize(("cls", "config"), CONFIGS)
def test_conformance(cls: type[RewardSource], config: dict[str, Any]) -> None:
    check_source(cls, config)


@pytest.mark.parametrize(("cls", "config"), CONFIGS)
def test_huge_and_non_utf8_completions_are_scored_fast(
    cls: type[RewardSource], config: dict[str, Any]
) -> None:
    src = cls(config)
    start = time.perf_counter()
    out = src.score([s(HUGE), s(SURROGATE), s("\x00\x01" * 1000)])
    assert time.perf_counter() - start < 5
    assert isinstance(out, list) and len(out) == 3
    for row in out:
        assert isinstance(row, Abstain) or all(math.isfinite(v) for v in row)  # type: ignore[union-attr]


def test_rules_are_registered_and_run_in_a_pipeline() -> None:
    hub = rh.Hub()
    for name in ("json-schema", "keywords", "format", "repetition", "language"):
        assert name in hub.sources
    spec = {
        "sources": [
            {"type": "format", "config": {"tags": ["think", "answer"]}},
            {"type": "keywords", "config": {"forbidden": ["password"]}},
            {"type": "repetition"},
        ],
        "aggregate": {"method": "weighted"},
    }
    with rh.Pipeline(spec, hub=hub) as pipe:
        res = pipe.score(
            [s("<think>hm</think><answer>4</answer>"), s("password password password password")]
        )
    assert res.vector.objectives == ("format", "no_forbidden", "repetition")
    assert res.vector.values.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, -0.5]]


# -- user patterns under a time limit (issue #10) ------------------------------------------

EVIL = r"(a|aa)+$"  # exponential for backtracking engines, `regex` included
HOSTILE = "a" * 40 + "b"


@pytest.fixture
def short_match_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardhub.sources._patterns as patterns

    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 0.2)


def test_a_catastrophic_regex_fails_the_check_within_the_timeout(short_match_limit: None) -> None:
    # the limit is in CPU seconds; a generous timeout_s keeps a loaded machine from letting
    # the engine's own (wall-clock) time-out answer first
    spec = {
        "sources": [
            {
                "type": "regex",
                "timeout_s": 10,
                "batch_size": 1,
                "config": {"pattern": EVIL, "must_match": False},
            }
        ]
    }
    start = time.process_time()
    with rh.Pipeline(spec, hub=rh.Hub()) as p:
        res = p.score([s(HOSTILE), s("no a here")])
    assert time.process_time() - start < 2  # CPU seconds: the match stopped at its limit
    # must_match false: a completion that hangs the pattern must not count as "no match"
    assert res.vector.values[:, 0].tolist() == [0.0, 1.0]
    reason = res.vector.reasons[0]["regex"]
    assert reason.startswith("failed: regex timed out after 0.2s") and EVIL in reason


def test_a_regex_match_gets_half_the_time_left_and_none_once_it_is_gone() -> None:
    from rewardhub.source import _DEADLINE
    from rewardhub.sources.basic import Regex

    src = Regex({"pattern": EVIL})
    token = _DEADLINE.set(time.monotonic() + 0.4)
    try:
        out = src.score([s(HOSTILE)])
        _DEADLINE.set(time.monotonic() - 1)
        late = src.score([s("aa")])
    finally:
        _DEADLINE.reset(token)
    assert isinstance(out, list) and isinstance(late, list)
    assert isinstance(out[0], Fail) and out[0].reason.startswith("regex timed out after 0.2")
    assert isinstance(late[0], Abstain) and "deadline passed" in late[0].reason


def test_a_catastrophic_regex_is_bounded_without_a_deadline_too(short_match_limit: None) -> None:
    with rh.Pipeline({"sources": [{"type": "regex", "config": {"pattern": EVIL}}]}) as p:
        res = p.score([s(HOSTILE), s("aaaa")])
    assert res.vector.values[:, 0].tolist() == [0.0, 1.0]
    assert res.vector.reasons[0]["regex"].startswith("failed: regex timed out after 0.2s")


def test_a_prompt_that_hangs_a_pattern_abstains(short_match_limit: None) -> None:
    from rewardhub.sources.basic import Regex

    out = Regex({"patterns": [{"pattern": EVIL, "field": "prompt"}]}).score([s("x", HOSTILE)])
    assert isinstance(out, list) and isinstance(out[0], Abstain)  # the completion is not to blame


def test_json_schema_patterns_run_under_the_time_limit(short_match_limit: None) -> None:
    value = JsonSchema({"schema": {"properties": {"x": {"type": "string", "pattern": EVIL}}}})
    keys = JsonSchema(
        {
            "schema": {
                "patternProperties": {EVIL: {"type": "integer"}},
                "additionalProperties": False,
            }
        }
    )
    extra = JsonSchema({"schema": {"additionalProperties": False, "patternProperties": {EVIL: {}}}})
    for src in (value, keys, extra):
        doc = {"x": HOSTILE} if src is value else {HOSTILE: 1}
        start = time.process_time()
        out = rows(src, json.dumps(doc))
        assert time.process_time() - start < 2
        assert isinstance(out[0], Fail) and out[0].reason.startswith("regex timed out"), out
    # honest values still go through the pattern keywords as before
    assert rows(value, '{"x": "aaaa"}', '{"x": "aab"}') == [[1.0, 1.0], [1.0, 0.0]]
    assert rows(keys, '{"aa": 1}', '{"aa": "x"}', '{"b": 1}') == [
        [1.0, 1.0],
        [1.0, 0.0],
        [1.0, 0.0],
    ]


@pytest.mark.parametrize(
    "doc",
    [
        '{"confidence": NaN}',
        '{"confidence": Infinity}',
        '{"confidence": -Infinity}',
        '{"confidence": -1e999}',  # overflows a float: would read as -inf
        '{"confidence": 1e400}',
        '{"confidence": 0.5, "confidence": 7}',  # readers disagree on which one counts
    ],
)
def test_json_schema_rejects_non_json_that_passes_range_checks(doc: str) -> None:
    schema = {
        "type": "object",
        "required": ["confidence"],
        "properties": {"confidence": {"type": "number", "minimum": 0, "maximum": 1}},
    }
    assert rows(JsonSchema({"schema": schema}), doc, '{"confidence": 0.5}') == [
        [0.0, 0.0],
        [1.0, 1.0],
    ]


def test_json_schema_rejects_numbers_that_overflow_a_float() -> None:
    """``-1e999`` read as ``-inf`` would pass ``maximum: 1``: it is not JSON a reader can use."""
    src = JsonSchema({"schema": {"type": "number", "maximum": 1}})
    assert rows(src, "-1e999", "-1e300", "-123456789012345678901234567890") == [
        [0.0, 0.0],
        [1.0, 1.0],
        [1.0, 1.0],  # a big integer is exact in Python: compared as it is
    ]


# -- format templates in linear time -------------------------------------------------------


def _reference_regex(template: str) -> Any:
    """The backtracking regex the template means (exponential in holes, exact on small text)."""
    import re

    from rewardhub.sources._text import INVISIBLE
    from rewardhub.sources.format import _HOLE, _literal_regex

    out, pos = [r"\s*"], 0
    for m in _HOLE.finditer(template):
        out.append(_literal_regex(template[pos : m.start()]))
        visible = f"[^\\s{INVISIBLE}]"
        out.append("(?:.*?)" if m.group() == "{*}" else f"(?:.*?{visible}.*?)")
        pos = m.end()
    out += [_literal_regex(template[pos:]), r"\s*"]
    return re.compile("".join(out), re.DOTALL)


def test_format_template_matcher_agrees_with_the_backtracking_regex() -> None:
    import random

    from rewardhub.sources.format import _Template

    rng = random.Random(7)
    tpl_tokens = ["<a>", "</a>", "x", "ab", " ", "\n", "{*}", "{+}", "{+}", "{*}"]
    text_tokens = ["<a>", "</a>", "x", "ab", "a", "b", " ", "\n", "\u200b", "y"]
    checked = agreed_true = 0
    for _ in range(3_000):
        template = "".join(rng.choice(tpl_tokens) for _ in range(rng.randint(1, 7)))
        matcher, ref = _Template(template), _reference_regex(template)
        for _ in range(12):
            text = "".join(rng.choice(text_tokens) for _ in range(rng.randint(0, 9)))
            got, want = matcher.fullmatch(text), ref.fullmatch(text) is not None
            assert got == want, (template, text, got, want)
            checked += 1
            agreed_true += want
    assert agreed_true > checked // 20  # the sweep exercises matches, not only misses


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{+}{+}{+}END", "x " * 50_000),  # adjacent holes: O(n^3) as a regex
        ("A{*}B{*}C{*}D", "A" + "BC" * 50_000),  # holes apart: O(n^3) too
        ("<a>{+}</a>\n<b>{+}</b>", "<a>x</a>" + " " * 100_000 + "<b>"),  # long whitespace runs
    ],
)
def test_format_templates_run_in_linear_time(template: str, text: str) -> None:
    src = Format({"template": template, "single": False})
    start = time.process_time()
    assert col(src, text) == [0.0]
    assert time.process_time() - start < 1.0


def test_format_holes_need_visible_content() -> None:
    src = Format({"tags": ["think", "answer"]})
    zero_width = "<think>\u200b</think>\n<answer>\ufeff\u2060</answer>"
    assert col(src, zero_width, "<think>ok</think>\n<answer>4</answer>") == [0.0, 1.0]


# -- non-answers and unicode tricks (issue #8: rule sources must not pay for them) ---------

BLANKS = ["", "   \n\t", "\u200b\u200d\ufeff", " \u2060 "]


def test_a_forbidden_phrase_hidden_by_invisible_or_fullwidth_characters_is_found() -> None:
    src = Keywords({"forbidden": ["kill", "credit card"]})
    tricks = ["k\u200bill them", "ｋｉｌｌ them", "credit\u00ad card", "cred\u2060it  card"]
    assert col(src, *tricks, "be kind") == [0.0, 0.0, 0.0, 0.0, 1.0]
    required = Keywords({"required": ["ｆｉｎａｌ answer"]})  # phrases are normalised too
    assert col(required, "my final answer", "my fin\u200bal answer") == [1.0, 1.0]


@pytest.mark.parametrize("text", BLANKS)
def test_a_blank_completion_fails_keywords_repetition_and_language(text: str) -> None:
    spec = {
        "sources": [
            {"type": "keywords", "config": {"required": ["x"], "forbidden": ["kill"]}},
            {"type": "repetition", "config": {"scale": 2.0}},
        ]
    }
    with rh.Pipeline(spec, hub=rh.Hub()) as p:
        res = p.score([s(text), s("x is fine")])
    # the failing values: 0 for keywords, -scale (every n-gram repeated) for repetition
    assert res.vector.values[0].tolist() == [0.0, 0.0, -2.0]
    assert res.vector.reasons[0] == {
        "keywords": "failed: blank completion",
        "repetition": "failed: blank completion",
    }
    assert res.vector.values[1].tolist() == [1.0, 1.0, 0.0]
    lang = rows(Language({"expected": "en"}), text)[0]
    assert isinstance(lang, Fail)


def test_zero_width_padding_does_not_reach_a_target_length() -> None:
    from rewardhub.sources.basic import Length

    src = Length({"target": 10})
    assert col(src, "short" + "\u200b" * 5, "ten chars!") == [-0.5, 0.0]
