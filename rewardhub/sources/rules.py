"""Rule sources: ``json-schema``, ``keywords``, ``format``, ``repetition`` and ``language``.

All are pure CPU checks on the completion text. A completion that breaks a rule scores 0
(it is truly wrong); a source abstains (NaN with a reason) only when it cannot judge: JSON
nested too deeply to check, a schema reference that cannot be resolved, too little text to
identify a language.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Row, Scores
from rewardhub.sources._patterns import PatternTimeout, compile_pattern, timed
from rewardhub.sources._text import INVISIBLE, blank, strip_invisible, visible
from rewardhub.spec import base_dir
from rewardhub.types import Sample

# -- json-schema ---------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)


class JsonSchemaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] | bool | None = Field(
        None, alias="schema", description="the JSON Schema, inline (draft picked by $schema)"
    )
    schema_file: str | None = Field(
        None, description="path of a JSON (or YAML) schema file, relative to the spec's folder"
    )
    extract: Literal["auto", "fence", "raw"] = Field(
        "auto",
        description="auto: the first ```json (or bare ```) fenced block if there is one, else "
        "the whole completion; fence: a fenced block is required; raw: the whole completion",
    )
    format_checker: bool = Field(False, description="also check 'format' keywords (email, date...)")
    valid_json_objective: str = Field(
        "valid_json", description="name of the parses-as-JSON objective"
    )
    schema_objective: str = Field("schema_valid", description="name of the validates objective")

    @model_validator(mode="after")
    def _one_schema(self) -> JsonSchemaConfig:
        if self.schema_ is not None and self.schema_file is not None:
            raise ValueError("give 'schema' or 'schema_file', not both")
        return self


def _read_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON: ``NaN`` and ``Infinity`` (which pass every range check)
    and duplicate keys (readers disagree on which one counts) are errors (ValueError)."""
    return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)


@functools.lru_cache(maxsize=256)
def _search(pattern: str) -> Any:
    return compile_pattern(pattern).search


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and timed(_search(patrn), instance, patrn) is None:
        yield ValidationError(f"{instance!r:.80} does not match {patrn!r}")


def _pattern_properties(validator: Any, props: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in props.items():
        for k, v in instance.items():
            if timed(_search(patrn), k, patrn) is not None:
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _prechecked(original: Any) -> Any:
    """A keyword that matches ``patternProperties`` with ``re`` (additionalProperties...):
    the keys are first matched under the time limit, so a key that hangs fails in time."""

    def keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "object"):
            for patrn in schema.get("patternProperties", {}):
                for k in instance:
                    timed(_search(patrn), k, patrn)
        yield from original(validator, value, instance, schema)

    return keyword


def _with_timed_patterns(cls: Any) -> Any:
    """``cls`` with the pattern keywords run by ``regex`` under the time limit."""
    import jsonschema.validators

    keywords: dict[str, Any] = {"pattern": _pattern, "patternProperties": _pattern_properties}
    for name in ("additionalProperties", "unevaluatedProperties"):
        if name in cls.VALIDATORS:
            keywords[name] = _prechecked(cls.VALIDATORS[name])
    return jsonschema.validators.extend(cls, keywords)  # type: ignore[no-untyped-call]


class JsonSchema(RewardSource):
    """The completion parses as JSON (``valid_json``) and validates against a schema (``schema_valid``)."""

    type = "json-schema"
    inline = True
    Config = JsonSchemaConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._base = base_dir.get()
        self._schema = self._load_schema()
        self._validator = self._build_validator() if self._schema is not None else None

    def cache_files(self) -> Sequence[Path]:
        c = self.config
        return () if c.schema_file is None else (_resolve(c.schema_file, self._base),)

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        has_schema = config.schema_ is not None or config.schema_file is not None
        if has_schema:
            return (config.valid_json_objective, config.schema_objective)
        return (config.valid_json_objective,)

    def _load_schema(self) -> Any:
        c = self.config
        if c.schema_file is None:
            return c.schema_
        path = _resolve(c.schema_file, self._base)
        try:
            return _read_structured(path)
        except OSError as exc:
            raise SourceError(
                f"json-schema: cannot read schema_file {str(path)!r}: {exc}"
            ) from None
        except ValueError as exc:  # JSON and YAML errors are ValueErrors (yaml.YAMLError too)
            raise SourceError(
                f"json-schema: schema_file {str(path)!r} is not valid: {exc}"
            ) from None
        except Exception as exc:
            raise SourceError(
                f"json-schema: schema_file {str(path)!r} is not valid: {exc}"
            ) from None

    def _build_validator(self) -> Any:
        import jsonschema
        import jsonschema.validators

        schema = self._schema
        if not isinstance(schema, (dict, bool)):
            raise SourceError(
                f"json-schema: the schema must be a JSON object (or boolean), got {type(schema).__name__}"
            )
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)  # type: ignore[arg-type]
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise SourceError(f"json-schema: malformed schema at {where}: {exc.message}") from None
        checker = cls.FORMAT_CHECKER if self.config.format_checker else None
        return _with_timed_patterns(cls)(schema, format_checker=checker)

    def _extract(self, text: str) -> str | None:
        mode = self.config.extract
        if mode != "raw":
            fenced = None
            for m in _FENCE.finditer(text):
                if m.group(1).lower() in ("", "json", "json5", "jsonc"):
                    fenced = m.group(2)
                    break
            if fenced is not None:
                return fenced.strip()
            if mode == "fence":
                return None
        return text.strip()

    def _row(self, text: str) -> Row:
        with_schema = self._validator is not None
        body = self._extract(text)
        if body is None:
            return [0.0, 0.0] if with_schema else [0.0]
        try:
            doc = strict_json(body)
        except RecursionError:  # the completion's doing: it fails the check
            return Fail("JSON nested too deeply to parse")
        except ValueError:
            return [0.0, 0.0] if with_schema else [0.0]
        if not with_schema:
            return [1.0]
        try:
            error = next(iter(self._validator.iter_errors(doc)), None)  # type: ignore[union-attr]
        except RecursionError:
            return Fail("JSON nested too deeply to validate")
        except PatternTimeout as exc:
            return exc.row()
        except Exception as exc:  # an unresolvable $ref, a broken pattern...
            return Abstain(f"schema could not be applied: {type(exc).__name__}: {exc}")
        return [1.0, 0.0 if error is not None else 1.0]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s.completion) for s in samples]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_validator"] = None  # jsonschema validators do not pickle: rebuilt on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._schema is not None:
            self._validator = self._build_validator()


#: the row of a completion that shows nothing: it fails every check of the completion
_BLANK = Fail("blank completion")

# -- keywords ------------------------------------------------------------------------------


class KeywordsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required: list[str] = Field(
        default_factory=list, description="words or phrases that should appear"
    )
    required_mode: Literal["all", "any", "fraction"] = Field(
        "fraction",
        description="all: 1 when every required phrase appears, else 0; any: 1 when at least "
        "one does; fraction: the fraction that appear",
    )
    forbidden: list[str] = Field(
        default_factory=list, description="words or phrases that must not appear"
    )
    forbidden_mode: Literal["any", "fraction"] = Field(
        "any",
        description="any: 0 when any forbidden phrase appears, else 1; fraction: 1 − the fraction "
        "of forbidden phrases that appear",
    )
    case_sensitive: bool = Field(False, description="match case exactly")
    whole_word: bool = Field(
        True, description="a phrase must not be part of a longer word ('cat' does not match 'cats')"
    )
    field: Literal["completion", "prompt"] = Field("completion", description="the text checked")
    required_objective: str = Field(
        "keywords", description="name of the required-phrases objective"
    )
    forbidden_objective: str = Field(
        "no_forbidden", description="name of the forbidden-phrases objective"
    )

    @model_validator(mode="after")
    def _something(self) -> KeywordsConfig:
        if not self.required and not self.forbidden:
            raise ValueError("give a non-empty 'required' or 'forbidden' list")
        if any(not p.strip() for p in [*self.required, *self.forbidden]):
            raise ValueError("keywords must not be empty or blank")
        if self.required and self.forbidden and self.required_objective == self.forbidden_objective:
            raise ValueError("required_objective and forbidden_objective must differ")
        return self


class _Phrase:
    """A phrase matcher: a cheap substring test on its first word, then the regex."""

    def __init__(self, phrase: str, case_sensitive: bool, whole_word: bool) -> None:
        phrase = visible(phrase)
        words = phrase.split() if case_sensitive else phrase.lower().split()
        body = r"\s+".join(re.escape(w) for w in words)
        if whole_word:
            body = rf"(?<!\w){body}(?!\w)"
        self.first = words[0]
        self.regex = re.compile(body)

    def found(self, text: str) -> bool:
        return self.first in text and self.regex.search(text) is not None


class Keywords(RewardSource):
    """Required phrases present (``keywords``) and forbidden phrases absent (``no_forbidden``)."""

    type = "keywords"
    inline = True
    Config = KeywordsConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        c = self.config
        self._required = [_Phrase(p, c.case_sensitive, c.whole_word) for p in c.required]
        self._forbidden = [_Phrase(p, c.case_sensitive, c.whole_word) for p in c.forbidden]

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        out = []
        if config.required:
            out.append(config.required_objective)
        if config.forbidden:
            out.append(config.forbidden_objective)
        return tuple(out)

    def _row(self, text: str) -> Row:
        c = self.config
        text = visible(text)  # k\u200bill and ｋｉｌｌ are "kill" to a reader
        if not c.case_sensitive:
            text = text.lower()
        row = []
        if self._required:
            hits = sum(p.found(text) for p in self._required)
            if c.required_mode == "all":
                row.append(float(hits == len(self._required)))
            elif c.required_mode == "any":
                row.append(float(hits > 0))
            else:
                row.append(hits / len(self._required))
        if self._forbidden:
            if c.forbidden_mode == "any":
                row.append(0.0 if any(p.found(text) for p in self._forbidden) else 1.0)
            else:
                bad = sum(p.found(text) for p in self._forbidden)
                row.append(1.0 - bad / len(self._forbidden))
        return row

    def score(self, samples: list[Sample]) -> Scores:
        if self.config.field == "prompt":
            return [self._row(s.prompt_text) for s in samples]
        # a blank completion has no forbidden phrase, and must not earn that
        return [_BLANK if blank(s.completion) else self._row(s.completion) for s in samples]


# -- format --------------------------------------------------------------------------------

_HOLE = re.compile(r"\{[*+]\}")
_BETWEEN_TAGS = re.compile(r"(?<=>)\s*(?=<)")
_TAG = re.compile(r"</?[A-Za-z_][^<>]*>")


class FormatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(
        None,
        description="the expected shape: literal text with holes, {*} = any text (may be empty), "
        "{+} = text with at least one non-space character; e.g. "
        "'<think>{+}</think>\\n<answer>{+}</answer>'",
    )
    tags: list[str] | None = Field(
        None,
        description="shorthand: tag names in order, ['think', 'answer'] = "
        "'<think>{+}</think>\\n<answer>{+}</answer>'",
    )
    mode: Literal["strict", "partial"] = Field(
        "strict",
        description="strict: 1 when the whole completion fits the template, else 0; partial: the "
        "fraction of the template's literal parts found in order",
    )
    single: bool = Field(
        True,
        description="strict only: each tag of the template (a literal part such as <answer>) "
        "must occur exactly once in the completion",
    )
    objective: str = "format"

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("tags must not be empty")
            for t in v:
                if not re.fullmatch(r"[A-Za-z_][\w.:-]*", t):
                    raise ValueError(f"{t!r} is not a tag name (letters, digits, _ . : -)")
        return v

    @model_validator(mode="after")
    def _one_template(self) -> FormatConfig:
        if (self.template is None) == (self.tags is None):
            raise ValueError("give exactly one of 'template' or 'tags'")
        if self.template is not None and not self.literal_parts():
            raise ValueError("the template has no literal text to look for")
        return self

    def effective_template(self) -> str:
        if self.template is not None:
            return self.template
        return "\n".join(f"<{t}>{{+}}</{t}>" for t in self.tags or [])

    def literal_parts(self) -> list[str]:
        """The template's literal pieces: the text between holes, split between adjacent tags."""
        return [
            part.strip()
            for segment in _HOLE.split(self.effective_template())
            for part in _BETWEEN_TAGS.split(segment)
            if part.strip()
        ]


_VISIBLE = f"[^\\s{INVISIBLE}]"  # what a ``{+}`` hole requires


class _Template:
    """A template matched in linear time (a regex with several ``.*?`` holes backtracks in
    O(n^holes) on a completion that almost fits).

    The template is a first literal, then groups of (holes, literal). Holes in a row merge into
    one that needs as many visible characters as it holds ``{+}``; each literal is then found
    at its leftmost place after enough visible text, which is optimal because the holes are
    otherwise unconstrained; the last literal must end the text (up to whitespace).
    """

    def __init__(self, template: str) -> None:
        literals = _HOLE.split(template)
        holes = _HOLE.findall(template)
        self.first = re.compile(r"\s*" + _literal_regex(literals[0].strip()))
        self.groups: list[tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = []
        need = 0
        for i, hole in enumerate(holes):
            need += hole == "{+}"
            lit = literals[i + 1].strip()
            if not lit and i + 1 < len(holes):
                continue  # adjacent holes: one hole
            last = i + 1 == len(holes)
            visible = re.compile(f"(?:[\\s{INVISIBLE}]*{_VISIBLE}){{{need}}}") if need else None
            tail = r"\s*\Z" if last else ""
            self.groups.append((visible, re.compile(_literal_regex(lit) + tail) if lit else None))
            need = 0
        self.plain = re.compile(r"\s*" + _literal_regex(literals[0].strip()) + r"\s*")

    def fullmatch(self, text: str) -> bool:
        if not self.groups:
            return self.plain.fullmatch(text) is not None
        m = self.first.match(text)
        if m is None:
            return False
        pos = m.end()
        for enough, literal in self.groups:
            if enough is not None:
                v = enough.match(text, pos)
                if v is None:
                    return False
                start = v.end()
            else:
                start = pos
            if literal is None:  # the template ends with holes: the rest is theirs
                return True
            found = literal.search(text, start)
            if found is None:
                return False
            pos = found.end()
        return True


def _count_upto(pattern: re.Pattern[str], text: str, limit: int) -> int:
    n = 0
    for _ in pattern.finditer(text):
        n += 1
        if n >= limit:
            break
    return n


def _literal_regex(text: str) -> str:
    """Literal text where every run of whitespace matches any (possibly empty) whitespace."""
    return r"\s*".join(re.escape(piece) for piece in re.split(r"\s+", text))


class Format(RewardSource):
    """The completion follows a template such as ``<think>…</think><answer>…</answer>``."""

    type = "format"
    inline = True
    Config = FormatConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        parts = self.config.literal_parts()
        self._parts = [re.compile(_literal_regex(p)) for p in parts]
        self._tags = [re.compile(re.escape(p)) for p in parts if _TAG.fullmatch(p)]
        self._template = _Template(self.config.effective_template())

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def _strict(self, text: str) -> float:
        if self.config.single and any(_count_upto(p, text, 2) != 1 for p in self._tags):
            return 0.0
        return 1.0 if self._template.fullmatch(text) else 0.0

    def _partial(self, text: str) -> float:
        found, pos = 0, 0
        for part in self._parts:
            m = part.search(text, pos)
            if m is not None:
                found += 1
                pos = m.end()
        return found / len(self._parts)

    def score(self, samples: list[Sample]) -> Scores:
        fn = self._strict if self.config.mode == "strict" else self._partial
        return [[fn(s.completion)] for s in samples]


# -- repetition ----------------------------------------------------------------------------


class RepetitionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(3, ge=1, le=32, description="n-gram size, in words")
    lowercase: bool = Field(True, description="compare words case-insensitively")
    scale: float = Field(1.0, gt=0, description="the reward is −scale × the repeated fraction")
    objective: str = "repetition"


_WORD = re.compile(r"\w+")


class Repetition(RewardSource):
    """N-gram repetition penalty: −(fraction of word n-grams that repeat an earlier one), in [−1, 0]."""

    type = "repetition"
    inline = True
    Config = RepetitionConfig

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def fail_values(self) -> tuple[float, ...]:
        return (-float(self.config.scale),)  # the worst it gives: every n-gram repeated

    def _value(self, text: str) -> Row:
        if blank(text):  # nothing repeated in nothing: not a free best score
            return _BLANK
        c = self.config
        text = visible(text)
        words = _WORD.findall(text.lower() if c.lowercase else text)
        total = len(words) - c.n + 1
        if total <= 1:
            return [0.0]
        repeated = total - len(set(zip(*(words[i:] for i in range(c.n)))))
        return [float(0.0 - c.scale * repeated / total)]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._value(s.completion) for s in samples]


# -- language ------------------------------------------------------------------------------


class LanguageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected: list[str] | str | None = Field(
        None, description="ISO 639-1 code(s) the completion should be in, e.g. 'en' or ['en', 'fr']"
    )
    metadata_field: str = Field(
        "language",
        description="when 'expected' is not set: the sample metadata field holding the code(s)",
    )
    mode: Literal["match", "probability"] = Field(
        "match",
        description="match: 1 when the detected language is expected, else 0; probability: the "
        "detector's probability of the expected language(s)",
    )
    languages: list[str] | None = Field(
        None, description="restrict detection to these codes (default: all 97 the model knows)"
    )
    min_chars: int = Field(
        20, ge=1, description="shorter completions (stripped) abstain: too little text to identify"
    )
    max_chars: int = Field(
        5000, ge=1, description="only the first max_chars characters are examined"
    )
    objective: str = "language"


class Language(RewardSource):
    """The completion is in the expected language (offline detector py3langid, extra: policy)."""

    type = "language"
    inline = True
    Config = LanguageConfig

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self._identifier()  # load now: a missing extra or an unknown code fails at construction

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    @cached_property
    def _model(self) -> Any:

        ident = copy.copy(_base_identifier())  # set_languages rebinds, never mutates, arrays
        known = set(ident.labels)
        wanted = [*(self.config.languages or []), *_codes(self.config.expected)]
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise SourceError(
                f"language: unknown language code(s) {unknown}; known: {', '.join(sorted(known))}"
            )
        if self.config.languages:
            ident.set_languages(
                sorted(set(self.config.languages) | set(_codes(self.config.expected)))
            )
        return ident

    def _identifier(self) -> Any:
        try:
            return self._model
        except SourceError:
            raise
        except ImportError:
            raise
        except Exception as exc:
            raise SourceError(f"language: cannot load the detector: {exc}") from exc

    def _row(self, s: Sample) -> Row:
        c = self.config
        expected = _codes(
            c.expected if c.expected is not None else s.metadata.get(c.metadata_field)
        )
        if not expected:
            return Abstain(f"no expected language: set 'expected' or metadata.{c.metadata_field}")
        if blank(s.completion):
            return _BLANK
        text = strip_invisible(s.completion[: c.max_chars]).strip()
        if len(text) < c.min_chars:
            return Abstain(
                f"too little text to identify a language ({len(text)} < {c.min_chars} chars)"
            )
        ident = self._model
        if c.mode == "match":
            lang, _ = ident.classify(text)
            return [1.0 if lang in expected else 0.0]
        ranked = dict(ident.rank(text))
        p = sum(float(ranked.get(code, 0.0)) for code in expected)
        return [min(1.0, max(0.0, p)) if math.isfinite(p) else 0.0]

    def score(self, samples: list[Sample]) -> Scores:
        return [self._row(s) for s in samples]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_model", None)  # reloaded lazily in the worker
        return state


@functools.lru_cache(maxsize=1)
def _base_identifier() -> Any:
    """The py3langid model, loaded once per process (about a second)."""
    from rewardhub._optional import require

    langid = require("py3langid.langid", "policy", "the language source")
    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def _codes(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(JsonSchema)
    registry.add(Keywords)
    registry.add(Format)
    registry.add(Repetition)
    registry.add(Language)
