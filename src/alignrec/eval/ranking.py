"""From model scores or submitted lists to the clean top-N lists that get scored.

Cleaning is the same for every model: drop repeated items (keep the first),
drop items the user already has (unless told not to), keep unknown ids in
place as misses (``INVALID``), so a model gains nothing from emitting them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split, eval_users, history

INVALID = -1
"""Stands for an item id that is not in the dataset."""

Scorer = Callable[[np.ndarray, list[np.ndarray]], torch.Tensor]
"""Scores all items for a batch: (user ids, their visible histories) -> [batch, num_items]."""


def clean_ranking(ranking: Iterable[int], excluded: Iterable[int] = (), length: int | None = None) -> list[int]:
    """De-duplicate, drop excluded items, keep INVALID placeholders; cut to ``length``."""
    banned = set(int(i) for i in excluded)
    seen: set[int] = set()
    cleaned: list[int] = []
    for raw in ranking:
        item = int(raw)
        if item != INVALID:
            if item in seen or item in banned:
                continue
            seen.add(item)
        cleaned.append(item)
        if length is not None and len(cleaned) == length:
            break
    return cleaned


def top_n_scored(
    scores: torch.Tensor, excluded: Sequence[np.ndarray] | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per row and their scores after masking each row's excluded items.

    Masked items score ``-inf``; they appear only when a row has fewer than ``n`` others.
    """
    scores = scores.clone()
    if excluded is not None:
        rows = np.concatenate([np.full(len(e), r) for r, e in enumerate(excluded)]) if excluded else []
        cols = np.concatenate(list(excluded)) if excluded else []
        if len(rows):
            scores[torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)] = -torch.inf
    best = torch.topk(scores, k=min(n, scores.shape[1]), dim=1)
    return best.indices.numpy(), best.values.numpy()


def top_n(scores: torch.Tensor, excluded: Sequence[np.ndarray] | None, n: int) -> np.ndarray:
    """Best ``n`` items per row after masking each row's excluded items."""
    return top_n_scored(scores, excluded, n)[0]


def rank_all_users(
    scorer: Scorer,
    dataset: SequenceDataset,
    split: Split,
    n: int,
    exclude_history: bool = True,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[int, list[int]]:
    """Top-``n`` internal item ids for every evaluable user, history excluded by default."""
    users = eval_users(dataset)
    # Similar lengths in a batch let sequence models trim padding.
    users = users[np.argsort(dataset.lengths[users], kind="stable")]
    rankings: dict[int, list[int]] = {}
    batches = range(0, len(users), batch_size)
    for start in tqdm(batches, desc=f"ranking {split}", unit="batch", disable=not progress, leave=False):
        batch = users[start : start + batch_size]
        histories = [history(dataset, int(u), split) for u in batch]
        with torch.no_grad():
            scores = scorer(batch, histories)
        best = top_n(scores, histories if exclude_history else None, n)
        rankings.update({int(u): row.tolist() for u, row in zip(batch, best, strict=True)})
    return rankings
