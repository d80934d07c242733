"""What an item is before it is quantised: collaborative and/or text vectors.

``cf`` is the SASRec item embedding (who interacts with it), ``text`` a MiniLM
sentence embedding of title + genres/categories (+ description), ``both`` the
concatenation of the two, each row L2-normalised and scaled by its weight so
neither part dominates by scale alone. ID-only datasets fall back to ``cf``
and record the fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignrec.config import TEXT_FIELDS, TokenizeConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.tokenize.text_encoder import encode_texts

FEATURE_KINDS = ("cf", "text", "both")
CF_FILE = "item_embeddings.npz"


@dataclass
class ItemFeatures:
    vectors: np.ndarray
    """[num_items, dim] float32, rows in dataset item order."""
    kind: str
    """The features actually used (``both`` becomes ``cf`` on an ID-only dataset)."""
    text_vectors: np.ndarray | None = None
    """Unit text vectors (kept for the semantic check), None without text."""
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def item_texts(dataset: SequenceDataset, fields: list[str]) -> list[str]:
    """One line per item: ``title; genres: a, b; description: ...`` (missing fields skipped)."""
    unknown = [f for f in fields if f not in TEXT_FIELDS]
    if unknown:
        raise AlignrecError(
            f"tokenize.text_fields: unknown field {unknown[0]!r}; choose from {', '.join(TEXT_FIELDS)}"
        )
    texts = []
    for item in range(dataset.num_items):
        parts = []
        for name in fields:
            column = dataset.item_text.get(name)
            value = str(column[item]) if column is not None else ""
            if value:
                parts.append(value if name == "title" else f"{name}: {value}")
        texts.append("; ".join(parts))
    return texts


def load_cf(sasrec_dir: str | Path, dataset: SequenceDataset) -> np.ndarray:
    """SASRec's item embeddings, checked row by row against the dataset's item ids."""
    path = Path(sasrec_dir) / CF_FILE
    if not path.is_file():
        raise AlignrecError(
            f"{path}: missing; train SASRec on this dataset first "
            "(`alignrec train sasrec --data DIR --out RUN`) and pass --sasrec RUN"
        )
    with np.load(path, allow_pickle=False) as arrays:
        if "embeddings" not in arrays or "item_ids" not in arrays:
            raise AlignrecError(f"{path}: needs arrays 'embeddings' and 'item_ids'; retrain SASRec")
        vectors, ids = arrays["embeddings"].astype(np.float32), arrays["item_ids"]
    if len(ids) != dataset.num_items or not np.array_equal(ids.astype(str), dataset.item_ids.astype(str)):
        raise AlignrecError(
            f"{path}: its {len(ids)} item ids do not match the dataset's {dataset.num_items} items "
            "(row order included); it was trained on another dataset — pass the matching --sasrec run"
        )
    return vectors


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def build_features(
    dataset: SequenceDataset,
    sasrec_dir: str | Path | None,
    config: TokenizeConfig,
    text_model_dir: Path | None = None,
) -> ItemFeatures:
    if config.features not in FEATURE_KINDS:
        raise AlignrecError(f"tokenize.features: {config.features!r}; choose cf, text or both")
    kind, notes = config.features, []
    if not dataset.has_text:
        if kind == "text":
            raise AlignrecError(
                f"tokenize.features=text: dataset {dataset.name!r} is ID-only (no item text); use cf"
            )
        if kind == "both":
            notes.append(f"dataset {dataset.name!r} is ID-only: using cf features alone")
            kind = "cf"
    parts, info = [], {}
    if kind in ("cf", "both"):
        if sasrec_dir is None:
            raise AlignrecError(f"tokenize.features={kind} needs --sasrec RUN (a SASRec run folder)")
        cf = load_cf(sasrec_dir, dataset)
        parts.append(config.cf_weight * _unit(cf))
        info["cf"] = {"file": str(Path(sasrec_dir) / CF_FILE), "dim": int(cf.shape[1])}
    text = None
    if kind in ("text", "both"):
        texts = item_texts(dataset, config.text_fields)
        empty = sum(1 for t in texts if not t)
        if empty:
            notes.append(f"{empty} item(s) have no text in {config.text_fields}")
        text, encoded = encode_texts(texts, config.text_batch_size, text_model_dir)
        text = _unit(text)
        parts.append(config.text_weight * text)
        info["text"] = {**encoded, "dim": int(text.shape[1]), "fields": config.text_fields}
    vectors = np.concatenate(parts, axis=1).astype(np.float32)
    return ItemFeatures(vectors=vectors, kind=kind, text_vectors=text, notes=notes, info=info)
