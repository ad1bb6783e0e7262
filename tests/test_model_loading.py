"""A hostile model folder runs no code (issue 20): a modules.json naming a class outside
sentence-transformers, a tokenizer config or model config with an ``auto_map`` to code in the
folder, and a pickled weights file. Each would write a marker file if its code ran."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rewardhub as rh
from tests import tiny_models as tm

pytest.importorskip("sentence_transformers")


def _payload(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\n"


class _Touch:
    """Unpickling this opens (creates) the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _refused(load: Callable[[], Any]) -> str:
    """Run a load; return what refused it (an error, or an abstention's reason)."""
    try:
        out = load()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return str(out)


def _score(kind: str, path: Path) -> Any:
    config: dict[str, Any] = {"model": str(path)}
    with rh.Pipeline({"sources": [{"type": kind, "config": config}]}) as pipe:
        b = pipe.vector([rh.Sample(prompt="q", completion="a", reference="a")])
    assert b.unscorable.all(), "a hostile model scored instead of being refused"
    return b.reasons


def test_modules_json_cannot_import_a_foreign_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentence_transformers

    assert int(sentence_transformers.__version__.split(".")[0]) >= 6
    marker = tmp_path / "ran-modules"
    st = tm.sentence_model(tmp_path / "m")
    # a module importable from sys.path and one in the folder (hub-style custom code)
    (tmp_path / "evil_st_module.py").write_text(_payload(marker) + "class Evil: pass\n")
    (st / "modeling_evil.py").write_text(_payload(marker) + "class Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = json.loads((st / "modules.json").read_text())
    for ref in ("evil_st_module.Evil", "modeling_evil.Evil"):
        modules[-1]["type"] = ref
        (st / "modules.json").write_text(json.dumps(modules))
        why = _refused(lambda: _score("embedding-similarity", st))
        assert not marker.exists(), f"{ref}: the folder's code ran"
        assert "third-party code" in why or "trust_remote_code" in why, why


def test_auto_map_in_tokenizer_or_model_config_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran-auto-map"
    rm = tm.bert_classifier(tmp_path / "rm", num_labels=1)
    code = _payload(marker) + (
        "from transformers import PreTrainedTokenizerFast, BertForSequenceClassification\n"
        "class EvilTokenizer(PreTrainedTokenizerFast): pass\n"
        "class EvilModel(BertForSequenceClassification): pass\n"
    )
    (rm / "evil_code.py").write_text(code)
    tc = json.loads((rm / "tokenizer_config.json").read_text())
    tc["auto_map"] = {"AutoTokenizer": [None, "evil_code.EvilTokenizer"]}
    (rm / "tokenizer_config.json").write_text(json.dumps(tc))
    mc = json.loads((rm / "config.json").read_text())
    mc["auto_map"] = {"AutoModelForSequenceClassification": "evil_code.EvilModel"}
    (rm / "config.json").write_text(json.dumps(mc))
    _refused(
        lambda: (
            rh.Hub()
            .sources.get("hf-classifier")({"model": str(rm)})
            .score([rh.Sample(prompt="q", completion="a")])
        )
    )
    assert not marker.exists()


def test_a_pickled_weights_file_is_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran-pickle"
    rm = tm.bert_classifier(tmp_path / "rm", num_labels=1)
    for f in rm.glob("*.safetensors"):
        f.unlink()
    with (rm / "pytorch_model.bin").open("wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": _Touch(marker)}, f, protocol=2)
    why = _refused(
        lambda: (
            rh.Hub()
            .sources.get("hf-classifier")({"model": str(rm)})
            .score([rh.Sample(prompt="q", completion="a")])
        )
    )
    assert not marker.exists(), "a pickle in the model folder ran code"
    assert "Error" in why, why
    shutil.rmtree(rm)


def test_the_models_extra_requires_a_sentence_transformers_that_refuses_foreign_modules() -> None:
    from packaging.requirements import Requirement
    from packaging.version import Version

    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in project["project"]["optional-dependencies"]["models"]]
    (st,) = [r for r in reqs if r.name == "sentence-transformers"]
    # 6.0 is the first release that refuses a modules.json class outside its package
    assert not any(st.specifier.contains(Version(v)) for v in ("3.4.1", "5.1.0", "5.99"))
    assert st.specifier.contains(Version("6.0.0"))
