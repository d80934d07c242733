"""From model scores or submitted lists to the clean top-N lists that get scored.

Cleaning is the same for every model: drop repeated items (keep the first),
drop items the user already has (unless told not to), keep unknown ids in
place as misses (``INVALID``), so a model gains nothing from emitting them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm.auto import tqdm

from alignrec.config import EvalConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split, history
from alignrec.recommender import NO_ITEM, Recommender

INVALID = -1
"""Stands for an item id that is not in the dataset."""

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


def rank_users(
    recommender: Recommender,
    dataset: SequenceDataset,
    users: np.ndarray,
    split: Split,
    settings: EvalConfig,
    progress: bool = True,
) -> dict[int, list[int]]:
    """The list each of ``users`` gets at ``split`` from any model, through the contract: the best
    ``max(settings.ks)`` internal item ids, the history left out unless ``settings`` say otherwise.

    Users go in order of history length, in the recommender's own batch size: similar
    lengths in a batch let sequence models trim padding. ``NO_ITEM`` pads are dropped.
    """
    users = np.asarray(users)[np.argsort(dataset.lengths[users], kind="stable")]
    rankings: dict[int, list[int]] = {}
    size = max(int(recommender.batch_size), 1)
    with tqdm(total=len(users), desc=f"{recommender.name} ranking {split}", unit="user", disable=not progress,
              leave=False) as bar:
        for start in range(0, len(users), size):
            batch = users[start : start + size]
            histories = [history(dataset, int(u), split) for u in batch]
            items, _ = recommender.recommend(histories, max(settings.ks), settings.exclude_history)
            rankings.update({int(u): row[row != NO_ITEM].tolist() for u, row in zip(batch, items, strict=True)})
            bar.update(len(batch))
    return rankings
