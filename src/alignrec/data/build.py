"""Turn raw interactions into a :class:`SequenceDataset`: filter, order, re-index.

Order within a user is by timestamp, ties broken by file order (the ML-1M copy
has many equal timestamps), so preparing the same file twice gives the same
bytes. Ids are re-indexed in natural order of the original ids (numerically
when all are integers), so LC-Rec's dense ids keep their values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from alignrec.config import TEXT_FIELDS
from alignrec.data.dataset import SequenceDataset
from alignrec.data.raw import RawData
from alignrec.errors import DataError

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class FilterOptions:
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    min_rating: float | None = None
    max_history: int = 0


def _natural_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """``"1m_10"`` sorts after ``"1m_9"``: digit runs compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(value) if part)


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Indices that sort string ids naturally (digit runs as numbers), ties by plain string."""
    values = [str(v) for v in ids]
    return np.array(sorted(range(len(values)), key=lambda i: (_natural_key(values[i]), values[i])), dtype=np.int64)


def _encode(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids in natural order, code of each value in that order)."""
    uniques, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    order = natural_order(uniques)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[inverse]


def k_core(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> np.ndarray:
    """Mask of interactions that survive iterative user and item k-core filtering."""
    keep = np.ones(len(users), dtype=bool)
    if min_user <= 1 and min_item <= 1:
        return keep
    while True:
        user_counts = np.bincount(users[keep], minlength=users.max() + 1)
        item_counts = np.bincount(items[keep], minlength=items.max() + 1)
        bad = keep & ((user_counts[users] < min_user) | (item_counts[items] < min_item))
        if not bad.any():
            return keep
        keep &= ~bad


def build_dataset(raw: RawData, options: FilterOptions, source: dict[str, object]) -> SequenceDataset:
    inter = raw.interactions
    total = len(inter.users)
    if total == 0:
        raise DataError(f"{source.get('path', raw.name)}: no interactions; the file holds none")
    if raw.item_text is not None:
        for index, item in enumerate(inter.items):
            if item not in raw.item_text:
                raise DataError(
                    f"{inter.locate(index)}: item {item!r} is not in the item file {raw.item_source}; "
                    "add it there or remove its interactions"
                )
    user_ids, user_codes = _encode(inter.users)
    item_ids, item_codes = _encode(inter.items)
    keep = np.ones(total, dtype=bool)
    dropped: dict[str, int] = {}
    if options.min_rating is not None:
        if inter.ratings is None:
            raise DataError(
                f"{source.get('path', raw.name)}: min_rating is set but the data has no rating column; "
                "unset min_rating or map a rating column"
            )
        keep &= np.asarray(inter.ratings) >= options.min_rating
        dropped["below_min_rating"] = int(total - keep.sum())
    before = int(keep.sum())
    keep[keep] = k_core(
        user_codes[keep], item_codes[keep], options.min_user_interactions, options.min_item_interactions
    )
    dropped["k_core"] = before - int(keep.sum())
    if not keep.any():
        raise DataError(
            f"{source.get('path', raw.name)}: no interaction is left after filtering "
            f"(min_rating={options.min_rating}, min_user_interactions={options.min_user_interactions}, "
            f"min_item_interactions={options.min_item_interactions}); lower those thresholds"
        )
    rows = np.flatnonzero(keep)
    all_times = None if inter.timestamps is None else np.asarray(inter.timestamps, dtype=np.float64)
    times = None if all_times is None else all_times[rows]
    sort_keys = (rows, user_codes[rows]) if times is None else (rows, times, user_codes[rows])
    rows = rows[np.lexsort(sort_keys)]
    users_sorted = user_codes[rows]
    if options.max_history > 0:
        counts = np.bincount(users_sorted, minlength=len(user_ids))
        ends = np.cumsum(counts)[users_sorted]
        position_from_end = ends - np.arange(len(rows))
        recent = position_from_end <= options.max_history
        dropped["max_history"] = int((~recent).sum())
        rows, users_sorted = rows[recent], users_sorted[recent]

    present_users = np.unique(users_sorted)
    present_items = np.unique(item_codes[rows])
    user_remap = np.full(len(user_ids), -1, dtype=np.int64)
    user_remap[present_users] = np.arange(len(present_users))
    item_remap = np.full(len(item_ids), -1, dtype=np.int64)
    item_remap[present_items] = np.arange(len(present_items))
    final_users = user_remap[users_sorted]
    counts = np.bincount(final_users, minlength=len(present_users))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    items_out = item_remap[item_codes[rows]].astype(np.int32)
    kept_item_ids = item_ids[present_items]

    item_text: dict[str, np.ndarray] = {}
    if raw.item_text is not None:
        dropped["catalog_items_without_interactions"] = len(raw.item_text) - len(kept_item_ids)
        for name in TEXT_FIELDS:
            column = np.asarray([raw.item_text[i].get(name, "") for i in kept_item_ids], dtype=str)
            if (column != "").any():
                item_text[name] = column
    codes = None
    if raw.published_codes is not None:
        codes = {i: raw.published_codes[i] for i in kept_item_ids if i in raw.published_codes}

    manifest = {
        "name": raw.name,
        "source": source,
        "sha256": raw.sources,
        "options": {
            "min_user_interactions": options.min_user_interactions,
            "min_item_interactions": options.min_item_interactions,
            "min_rating": options.min_rating,
            "max_history": options.max_history,
        },
        "counts": {
            "raw_interactions": total,
            "interactions": len(items_out),
            "users": len(present_users),
            "items": len(kept_item_ids),
        },
        "dropped": dropped,
        "ordered_by": "timestamp, then file order" if times is not None else "file order",
        "text_fields": sorted(item_text),
    }
    return SequenceDataset(
        name=raw.name,
        user_ids=user_ids[present_users],
        item_ids=kept_item_ids,
        offsets=offsets,
        items=items_out,
        timestamps=None if all_times is None else all_times[rows],
        item_text=item_text,
        published_codes=codes,
        manifest=manifest,
    )
