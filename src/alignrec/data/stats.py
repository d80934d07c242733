"""``alignrec data stats``: what a prepared dataset holds, and what it lacks."""

from __future__ import annotations

from typing import Any

import numpy as np

from alignrec.config import TEXT_FIELDS
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import MIN_EVAL_LENGTH, eval_users


def dataset_stats(dataset: SequenceDataset) -> dict[str, Any]:
    lengths = dataset.lengths
    quantiles = {f"p{q}": float(np.percentile(lengths, q)) for q in (0, 25, 50, 75, 90, 100)}
    coverage = {
        name: float((dataset.item_text[name] != "").mean()) if name in dataset.item_text else 0.0
        for name in TEXT_FIELDS
    }
    per_user_pairs = dataset.items.astype(np.int64) + dataset.num_items * np.repeat(
        np.arange(dataset.num_users, dtype=np.int64), lengths
    )
    return {
        "name": dataset.name,
        "users": dataset.num_users,
        "items": dataset.num_items,
        "interactions": dataset.num_interactions,
        "sparsity": 1.0 - dataset.num_interactions / (dataset.num_users * dataset.num_items),
        "sequence_length": {"mean": float(lengths.mean()), **quantiles},
        "evaluable_users": int(len(eval_users(dataset))),
        "users_too_short_to_evaluate": int((lengths < MIN_EVAL_LENGTH).sum()),
        "repeated_user_item_pairs": int(len(per_user_pairs) - len(np.unique(per_user_pairs))),
        "has_timestamps": dataset.timestamps is not None,
        "text": "id-only (no item text)" if not dataset.has_text else "available",
        "text_coverage": coverage,
        "published_codes": dataset.published_codes is not None,
        "dropped": dataset.manifest.get("dropped", {}),
    }


def format_stats(stats: dict[str, Any]) -> str:
    lines = [
        f"dataset        {stats['name']}",
        f"users          {stats['users']:,}",
        f"items          {stats['items']:,}",
        f"interactions   {stats['interactions']:,}",
        f"sparsity       {stats['sparsity']:.4%}",
        "seq. length    mean {mean:.1f}  min {p0:.0f}  p25 {p25:.0f}  median {p50:.0f}  "
        "p75 {p75:.0f}  p90 {p90:.0f}  max {p100:.0f}".format(**stats["sequence_length"]),
        f"evaluable      {stats['evaluable_users']:,} users "
        f"({stats['users_too_short_to_evaluate']:,} with < {MIN_EVAL_LENGTH} items train only)",
        f"repeats        {stats['repeated_user_item_pairs']:,} repeated user-item pairs",
        f"timestamps     {'yes' if stats['has_timestamps'] else 'no (order is file order)'}",
    ]
    if stats["text"] == "available":
        covered = ", ".join(
            f"{name} {share:.1%}" for name, share in stats["text_coverage"].items() if share > 0
        )
        lines.append(f"item text      {covered}")
    else:
        lines.append(
            "item text      none: ID-only dataset; text-based features (text embeddings, "
            "title/query tasks) are unavailable"
        )
    if stats["published_codes"]:
        lines.append("published ids  yes (published_codes.json, for comparison)")
    dropped = {k: v for k, v in stats["dropped"].items() if v}
    if dropped:
        lines.append("dropped        " + ", ".join(f"{k}: {v:,}" for k, v in dropped.items()))
    return "\n".join(lines)
