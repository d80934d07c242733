"""The one recommender contract: histories in, each user's best ``k`` unseen items and their scores out.

Every model implements it (MostPop, SASRec, the LLM, a model of your own), and
every consumer uses it and nothing else: evaluation (``alignrec.eval.ranking``),
precompute and its Ray workers, the live endpoint and the web page. A model
joins by one entry in ``alignrec.catalog``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

NO_ITEM = -1
"""Pads a row of item ids when fewer than ``k`` items are left to recommend."""


class Recommender(Protocol):
    name: str
    batch_size: int
    """Histories per ``recommend`` call that keep the model efficient (callers cut batches to it)."""

    def recommend(
        self, histories: list[np.ndarray], k: int, exclude_history: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids [B, k] and scores [B, k], best first; a history's items are left out
        unless ``exclude_history`` is False. Where fewer than ``k`` items remain, the row ends in
        ``NO_ITEM`` with score ``-inf``.
        """
        ...


def top_k(
    scores: torch.Tensor, histories: Sequence[np.ndarray], k: int, exclude_history: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The contract's answer from a score for every item ([B, num_items]): best ``k`` per row
    after masking each row's history, widened with ``NO_ITEM`` where fewer are left."""
    scores = scores.clone()
    if exclude_history and histories:
        rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)])
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if len(rows):
            scores[torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)] = -torch.inf
    best = torch.topk(scores, k=min(k, scores.shape[1]), dim=1)
    items = np.full((scores.shape[0], k), NO_ITEM, dtype=np.int64)
    values = np.full((scores.shape[0], k), -np.inf, dtype=np.float32)
    items[:, : best.indices.shape[1]] = best.indices.numpy()
    values[:, : best.values.shape[1]] = best.values.float().numpy()
    items[~np.isfinite(values)] = NO_ITEM
    return items, values
