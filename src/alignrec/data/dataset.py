"""The prepared dataset: every user's items in time order, with original ids.

On disk it is one ``dataset.npz`` (flat int32 item array + offsets, id and text
columns as fixed-width unicode arrays, no pickles) and a human-readable
``manifest.json``. ML-1M loads in a few milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignrec.config import TEXT_FIELDS
from alignrec.errors import DataError
from alignrec.io import atomic_path, read_json, write_json

FORMAT_VERSION = 1


@dataclass
class SequenceDataset:
    """Users' item sequences, re-indexed to dense ints; index ``i`` is internal id ``i``."""

    name: str
    user_ids: np.ndarray
    """Original user ids (str), in internal-id order."""
    item_ids: np.ndarray
    """Original item ids (str), in internal-id order."""
    offsets: np.ndarray
    """int64, length ``num_users + 1``: user ``u``'s items are ``items[offsets[u]:offsets[u+1]]``."""
    items: np.ndarray
    """int32 internal item ids, every user's sequence in time order, concatenated."""
    timestamps: np.ndarray | None = None
    item_text: dict[str, np.ndarray] = field(default_factory=dict)
    """Canonical text field -> str array over items ("" where missing); empty when ID-only."""
    published_codes: dict[str, list[str]] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def has_text(self) -> bool:
        return bool(self.item_text)

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def sequences(self) -> list[np.ndarray]:
        return np.split(self.items, self.offsets[1:-1])

    def title(self, item: int) -> str:
        """The item's title, else its original id (ID-only datasets)."""
        titles = self.item_text.get("title")
        if titles is not None and titles[item]:
            return str(titles[item])
        return str(self.item_ids[item])

    def fingerprint(self) -> str:
        """Identifies the prepared data (source, input hashes, options, counts) for resume checks."""
        keys = {k: self.manifest.get(k) for k in ("source", "sha256", "options", "counts")}
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]

    def item_index(self) -> dict[str, int]:
        return {str(original): i for i, original in enumerate(self.item_ids)}

    def user_index(self) -> dict[str, int]:
        return {str(original): u for u, original in enumerate(self.user_ids)}

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "user_ids": np.asarray(self.user_ids, dtype=str),
            "item_ids": np.asarray(self.item_ids, dtype=str),
            "offsets": self.offsets.astype(np.int64),
            "items": self.items.astype(np.int32),
        }
        if self.timestamps is not None:
            arrays["timestamps"] = self.timestamps.astype(np.float64)
        for name, column in self.item_text.items():
            arrays[f"text_{name}"] = np.asarray(column, dtype=str)
        with atomic_path(folder / "dataset.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        if self.published_codes is not None:
            write_json(folder / "published_codes.json", self.published_codes)
        write_json(folder / "manifest.json", {"format_version": FORMAT_VERSION, **self.manifest})

    @classmethod
    def load(cls, folder: str | Path) -> SequenceDataset:
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file() or not (folder / "dataset.npz").is_file():
            raise DataError(
                f"{folder}: not a prepared dataset (no manifest.json + dataset.npz); "
                "create it with `alignrec data prepare ... --out DIR`"
            )
        manifest = read_json(manifest_path)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{manifest_path}: format_version {manifest.get('format_version')} is not "
                f"{FORMAT_VERSION}; prepare the dataset again with this alignrec"
            )
        with np.load(folder / "dataset.npz", allow_pickle=False) as arrays:
            text = {
                name: arrays[f"text_{name}"] for name in TEXT_FIELDS if f"text_{name}" in arrays
            }
            codes_path = folder / "published_codes.json"
            return cls(
                name=manifest["name"],
                user_ids=arrays["user_ids"],
                item_ids=arrays["item_ids"],
                offsets=arrays["offsets"],
                items=arrays["items"],
                timestamps=arrays.get("timestamps"),
                item_text=text,
                published_codes=read_json(codes_path) if codes_path.is_file() else None,
                manifest=manifest,
            )
