"""Issue #8 part 4: caches never replay a failure or a stale result."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rewardhub as rh
from rewardhub.cache import SCHEMA_VERSION, DiskCache
from rewardhub.testing import plugin_with

ROOT = Path(__file__).resolve().parent.parent


def S(completion: str = "c", reference: Any = None, **meta: Any) -> rh.Sample:
    return rh.Sample(prompt="p", completion=completion, reference=reference, metadata=meta)


# -- exact sample keys -------------------------------------------------------------------------

big = np.arange(5000, dtype=np.float64)
big2 = big.copy()
big2[2500] = -1.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S(reference=4), S(reference="4")),
        (S(reference=None), S(reference="")),
        (S(reference=1), S(reference=1.0)),
        (S(reference=1), S(reference=True)),
        (S(reference=[1, 2]), S(reference=(1, 2))),
        (S(reference={1: "a"}), S(reference={"1": "a"})),
        (S(reference=big), S(reference=big2)),  # a truncated repr made these one key
        (S(reference=np.float32(0.5)), S(reference=0.5)),
        (S(reference=b"x"), S(reference="x")),
        (S(reference=["list", [1]]), S(reference=[1])),  # a value shaped like a type tag
        (S("a\x1fb", "c"), S("a", "b\x1fc")),  # the old separator
        (rh.Sample(prompt="[]", completion="c"), rh.Sample(prompt=[], completion="c")),
        (S(tag="4"), S(tag=4)),
        (S(tag=[1]), S(tag=(1,))),  # nested: the exact walk, not the flat fast path
        (S(tag=1.0), S(tag=1)),  # flat metadata: the fast path keeps 1 and 1.0 apart
        (S(tag=None), S(tag="")),
        (
            rh.Sample(prompt=[{"role": "user", "content": "hi"}], completion="c"),
            rh.Sample(prompt=[{"role": "system", "content": "hi"}], completion="c"),
        ),
    ],
)
def test_different_samples_never_share_a_key(a: rh.Sample, b: rh.Sample) -> None:
    assert a.key != b.key and a != b
    assert a.digest != b.digest


def test_equal_content_shares_a_key() -> None:
    assert S(reference=big).digest == S(reference=big.copy()).digest
    assert S(tags={"x", "y"}).key == S(tags={"y", "x"}).key
    assert S(reference={"a": 1, "b": 2}).digest == S(reference={"b": 2, "a": 1}).digest


def test_set_metadata_gives_the_same_digest_in_every_process() -> None:
    code = (
        "import rewardhub as rh; "
        "print(rh.Sample(prompt='p', completion='c', reference={'a', 'b', 'c', 1, 2.5}, "
        "metadata={'tags': {'x', 'y', 'z', 'w'}, 'f': frozenset({'q', 'r'})}).digest)"
    )
    digests = set()
    for seed in ("0", "1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# -- what the caches keep ------------------------------------------------------------------------

CALLS: list[str] = []


@rh.reward_source("flaky", objectives=["ok"])
def flaky(sample: rh.Sample) -> Any:
    CALLS.append(sample.completion)
    if sample.completion.startswith("down"):
        return rh.Abstain("judge did not answer")
    if sample.completion.startswith("bad"):
        return rh.Fail("unparsable answer")
    if sample.completion.startswith("half"):
        return None
    return 1.0


def flaky_pipe(cache: dict[str, Any]) -> rh.Pipeline:
    hub = rh.Hub(plugins=[plugin_with(flaky)], entry_points=False)
    return rh.Pipeline({"sources": [{"type": "flaky"}], "cache": cache}, hub=hub)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_abstentions_are_recomputed_failed_checks_are_cached(tmp_path: Path, where: str) -> None:
    cache: dict[str, Any] = {"path": str(tmp_path / "c.sqlite")}
    if where == "disk":
        cache["memory_items"] = 0
    samples = [S("ok"), S("down"), S("bad"), S("half")]
    CALLS.clear()
    with flaky_pipe(cache) as p:
        p.score(samples)
        p.score(samples)
    # the abstentions ran again; the value and the failed check came from the cache
    assert CALLS == ["ok", "down", "bad", "half", "down", "half"]
    CALLS.clear()
    with flaky_pipe(cache) as p:  # a fresh process would do the same (--resume)
        res = p.score(samples)
    assert CALLS == ["down", "half"]
    assert res.vector.reasons[2] == {"flaky": "failed: unparsable answer"}
    assert res.vector.failed[2, 0] and res.vector.unscorable[1, 0]


def test_a_cache_file_of_an_older_layout_is_dropped_with_a_warning(tmp_path: Path) -> None:
    """Layout 1 kept only reason text, from which no outcome may be read: its entries are
    dropped (and recomputed), never misread."""
    path = tmp_path / "c.sqlite"
    with flaky_pipe({"path": str(path)}) as p:
        key = p.engine.sources[0].cache_key
    db = sqlite3.connect(path)
    db.execute("DROP TABLE results")
    db.execute("PRAGMA user_version = 0")
    db.execute(
        "CREATE TABLE results (source TEXT NOT NULL, sample TEXT NOT NULL, payload TEXT NOT "
        "NULL, PRIMARY KEY (source, sample)) WITHOUT ROWID"
    )
    db.execute(  # an old entry whose reason text claimed a failed check
        "INSERT INTO results VALUES (?, ?, ?)", (key, S("ok").digest, '[[0.0], null, "failed: x"]')
    )
    db.commit()
    db.close()
    CALLS.clear()
    with pytest.warns(UserWarning, match="older rewardhub .* its 1 entries are dropped"):
        p = flaky_pipe({"path": str(path)})
    with p:
        res = p.score([S("ok")])
    assert CALLS == ["ok"] and res.vector.values.tolist() == [[1.0]]
    # the file now has the current layout: a newer layout than this one is refused
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(rh.RewardHubError, match="written by a newer rewardhub"):
        DiskCache(path)


def test_score_after_close_raises_a_clear_error(tmp_path: Path) -> None:
    p = flaky_pipe({"path": str(tmp_path / "c.sqlite")})
    p.score([S("ok")])
    p.close()
    p.close()  # twice is harmless
    with pytest.raises(rh.RewardHubError, match="pipeline is closed"):
        p.score([S("other")])
    with pytest.raises(rh.RewardHubError, match="is closed"):
        p.engine.disk.get_many("x", ["y"])  # type: ignore[union-attr]


# -- files a source reads are part of its key ----------------------------------------------------


def _score_twice(spec: dict[str, Any], edit: Any, samples: list[rh.Sample], tmp: Path) -> Any:
    """Score, edit a file, score with a new pipeline on the same disk cache."""
    spec = {**spec, "cache": {"path": str(tmp / "cache.sqlite")}, "normalize": "none"}
    with rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as p:
        before = p.vector(samples)
        key_before = p.engine.sources[0].cache_key
    edit()
    with rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as p:
        after = p.vector(samples)
        assert p.engine.sources[0].cache_key != key_before
        assert p.engine.stats.disk_hits == 0
    return before, after


def test_editing_a_python_source_file_invalidates_its_results(tmp_path: Path) -> None:
    mod = tmp_path / "reward_fn.py"
    mod.write_text("def f(s):\n    return 1.0\n")
    spec = {"sources": [{"type": "python", "config": {"function": f"{mod}:f"}}]}
    before, after = _score_twice(
        spec, lambda: mod.write_text("def f(s):\n    return 2.0\n"), [S()], tmp_path
    )
    assert before.values.tolist() == [[1.0]] and after.values.tolist() == [[2.0]]


def test_editing_a_json_schema_file_invalidates_its_results(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["a"]}))
    spec = {"sources": [{"type": "json-schema", "config": {"schema_file": str(schema)}}]}
    before, after = _score_twice(
        spec,
        lambda: schema.write_text(json.dumps({"type": "object", "required": ["b"]})),
        [S('{"a": 1}')],
        tmp_path,
    )
    assert before.values.tolist() == [[1.0, 1.0]] and after.values.tolist() == [[1.0, 0.0]]


def test_editing_a_rego_policy_invalidates_its_results(tmp_path: Path) -> None:
    pytest.importorskip("regorus")
    pol = tmp_path / "p.rego"
    pol.write_text('package t\n\nimport rego.v1\n\nallow if contains(input.completion, "a")\n')
    spec = {
        "sources": [
            {
                "type": "rego",
                "config": {
                    "policies": [str(pol)],
                    "package": "t",
                    "rules": [{"rule": "allow", "objective": "allowed"}],
                },
            }
        ]
    }
    before, after = _score_twice(
        spec,
        lambda: pol.write_text(
            'package t\n\nimport rego.v1\n\nallow if contains(input.completion, "z")\n'
        ),
        [S("a")],
        tmp_path,
    )
    assert before.values.tolist() == [[1.0]] and after.values.tolist() == [[0.0]]


def test_sources_without_files_keep_their_key(tmp_path: Path) -> None:
    spec = {"sources": [{"type": "length"}]}
    with (
        rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as a,
        rh.Pipeline(spec, hub=rh.Hub(entry_points=False)) as b,
    ):
        assert a.engine.sources[0].cache_key == b.engine.sources[0].cache_key


def test_binary_payloads_read_back_exactly(tmp_path: Path) -> None:
    """Every float (NaN, ±inf, -0.0, subnormals), std or none, any reason text (lone
    surrogates included) and every outcome code comes back as written, through the file."""
    from rewardhub.cache import pack_rows

    rng = np.random.default_rng(0)
    odd = [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]
    entries: list[Any] = []
    for i in range(200):
        k = int(rng.integers(0, 4))
        row = rng.normal(size=(1, k)) * 10 ** rng.uniform(-300, 300)
        if k and i % 3 == 0:
            row[0, 0] = odd[i % len(odd)]
        values = pack_rows(row)[0]
        if i % 4 == 0:
            entries.append(values)  # a plain row
            continue
        std = pack_rows(np.abs(row))[0] if i % 2 else None
        reason = [None, "failed: x", "é \ud800 \U0001f600", ""][i % 4]
        entries.append((values, std, reason, i % 4))
    cache = DiskCache(tmp_path / "c.sqlite")
    digests = [f"{i:064x}" for i in range(len(entries))]
    cache.put_many("src", digests, entries)
    cache.close()
    back = DiskCache(tmp_path / "c.sqlite").get_many("src", digests)
    for d, e in zip(digests, entries):
        plain = isinstance(e, tuple) and e[1] is None and e[2] is None and e[3] == 0
        assert back[d] == (e[0] if plain else e)


def test_digests_of_lone_surrogates_differ_from_their_replacement() -> None:
    a, b = S("x \ud800"), S("x \ufffd")
    assert a.digest != b.digest and a.digest == S("x \ud800").digest
