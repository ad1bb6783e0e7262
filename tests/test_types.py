from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import rewardhub as rh


def test_sample_equality_uses_content_and_survives_pickle() -> None:
    a = rh.Sample(
        prompt=[{"role": "user", "content": "hi"}], completion="x", metadata={"k": [1, 2]}
    )
    b = rh.Sample(
        prompt=[{"role": "user", "content": "hi"}], completion="x", metadata={"k": [1, 2]}
    )
    c = rh.Sample(prompt="hi", completion="x")
    assert a == b and hash(a) == hash(b) and a != c
    assert pickle.loads(pickle.dumps(a)) == a
    assert len({a, b, c}) == 2
    assert a.digest == b.digest != c.digest
    assert a.prompt_text == "user: hi"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"prompt": "p"}, "missing field 'completion'"),
        ({"prompt": "p", "completion": 3}, "completion must be a string"),
        ({"prompt": 5, "completion": "c"}, "prompt must be a string or a list of chat messages"),
        ({"completion": "c", "metadata": [1]}, "'metadata' must be a JSON object"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_sample_from_dict_errors_name_the_field(data: object, message: str) -> None:
    with pytest.raises(rh.InputError, match="line 7") as info:
        rh.Sample.from_dict(data, line=7)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_sample_from_dict_moves_extra_fields_to_metadata() -> None:
    s = rh.Sample.from_dict(
        {"prompt": "p", "completion": "c", "data_source": "gsm8k", "metadata": {"a": 1}}
    )
    assert s.metadata == {"data_source": "gsm8k", "a": 1}
    assert rh.Sample.from_dict(s.to_dict()) == s


def test_reward_batch_access_concat_and_records_round_trip() -> None:
    a = rh.RewardBatch(
        np.array([[1.0], [math.nan]]), ("x",), reasons=({}, {"src": "timeout"}), sources=("src",)
    )
    b = rh.RewardBatch(np.array([[2.0, 3.0], [4.0, 5.0]]), ("y", "z"), std=np.full((2, 2), 0.5))
    c = rh.RewardBatch.concat([a, b])
    assert c.objectives == ("x", "y", "z") and c.sources == ("src", "y", "z")
    assert c["z"].tolist() == [3.0, 5.0]
    assert c.unscorable.tolist() == [[False, False, False], [True, False, False]]
    assert c.std is not None and math.isnan(c.std[0, 0]) and c.std[0, 1] == 0.5
    recs = c.to_records()
    assert recs[1] == {
        "rewards": {"x": None, "y": 4.0, "z": 5.0},
        "std": {"x": None, "y": 0.5, "z": 0.5},
        "reasons": {"src": "timeout"},
        "outcomes": {"x": "unscorable"},
    }
    assert "outcomes" not in recs[0]
    back = rh.RewardBatch.from_records(recs)
    np.testing.assert_array_equal(back.values, c.values)
    np.testing.assert_array_equal(back.std, c.std)  # type: ignore[arg-type]
    assert back.reasons == c.reasons
    np.testing.assert_array_equal(back.outcomes, c.outcomes)  # type: ignore[arg-type]
    sub = c.select([1])
    assert sub.n == 1 and sub.reasons == ({"src": "timeout"},)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": np.zeros((2, 2)), "objectives": ("a",)}, "expected"),
        ({"values": np.zeros((2, 1)), "objectives": ("a",), "reasons": ({},)}, "1 entries for 2"),
        ({"values": np.zeros((1, 2)), "objectives": ("a", "a")}, "duplicate objective"),
        (
            {"values": np.zeros((1, 1)), "objectives": ("a",), "std": np.zeros((2, 1))},
            "std has shape",
        ),
    ],
)
def test_reward_batch_rejects_inconsistent_shapes(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rh.RewardBatch(**kwargs)


def test_unknown_column_lists_the_objectives() -> None:
    with pytest.raises(KeyError, match=r"unknown objective 'q'.*\['a'\]"):
        rh.RewardBatch(np.zeros((1, 1)), ("a",)).column("q")
