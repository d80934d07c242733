"""One user's cached list as bytes, and the digest of a whole snapshot.

Every store keeps the same bytes under the same original user id, so two
snapshots (two stores, two engines, a resumed and an uninterrupted job) are
equal exactly when their digests are.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from alignrec.recommender import NO_ITEM

FORMAT = 1
_HEADER = struct.Struct("<BBH")  # format, fallback flag, number of items


@dataclass(frozen=True)
class CachedList:
    items: tuple[int, ...]
    """Internal item ids, best first."""
    scores: tuple[float, ...]
    """One per item (stored as float32)."""
    fallback: bool
    """True: the popularity list, given because the model could not be used for this user."""


def encode(items: np.ndarray, scores: np.ndarray, fallback: bool) -> bytes:
    """A row of a recommender's output (NO_ITEM pads dropped) as stored bytes."""
    keep = np.asarray(items) != NO_ITEM
    kept_items = np.asarray(items)[keep].astype("<i4")
    kept_scores = np.asarray(scores)[keep].astype("<f4")
    return _HEADER.pack(FORMAT, int(fallback), len(kept_items)) + kept_items.tobytes() + kept_scores.tobytes()


def decode(value: bytes) -> CachedList:
    """Plain tuples, not numpy arrays: on the request path a list of ~50 is cheaper that way."""
    version, fallback, count = _HEADER.unpack_from(value)
    if version != FORMAT:
        raise ValueError(f"cached list format {version} is not {FORMAT}; precompute the snapshot again")
    unpacked = struct.unpack_from(f"<{count}i{count}f", value, _HEADER.size)
    return CachedList(unpacked[:count], unpacked[count:], bool(fallback))


def digest(records: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over the records sorted by user, each key and value length-prefixed."""
    hasher = hashlib.sha256()
    for user, value in sorted(records):
        key = user.encode("utf-8")
        hasher.update(struct.pack("<I", len(key)) + key + struct.pack("<I", len(value)) + value)
    return hasher.hexdigest()
