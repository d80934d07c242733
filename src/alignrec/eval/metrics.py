"""Ranking metrics for leave-one-out (one target per user).

With a single relevant item, Recall@K equals HR@K, and the ideal DCG is 1, so
NDCG@K is ``1 / log2(rank + 1)`` when the target is within the top K. Ranks are
1-based; 0 means the target is not in the list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def target_rank(ranking: Sequence[int], target: int) -> int:
    """1-based position of ``target`` in an already de-duplicated list, 0 if absent."""
    for position, item in enumerate(ranking, start=1):
        if item == target:
            return position
    return 0


def recall_at(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks)
    return float(((ranks > 0) & (ranks <= k)).mean()) if len(ranks) else 0.0


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = (ranks > 0) & (ranks <= k)
    gains = np.zeros_like(ranks)
    gains[hit] = 1.0 / np.log2(ranks[hit] + 1.0)
    return float(gains.mean()) if len(ranks) else 0.0


def mrr(ranks: np.ndarray) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    reciprocal = np.zeros_like(ranks)
    reciprocal[ranks > 0] = 1.0 / ranks[ranks > 0]
    return float(reciprocal.mean()) if len(ranks) else 0.0


def coverage_at(rankings: Sequence[Sequence[int]], k: int, num_items: int) -> float:
    """Share of the catalogue that appears in at least one top-K list (invalid ids ignored)."""
    seen = {item for ranking in rankings for item in ranking[:k] if 0 <= item < num_items}
    return len(seen) / num_items if num_items else 0.0
