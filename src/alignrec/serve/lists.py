"""The lists of one shard of users: the unit of work every precompute engine runs."""

from __future__ import annotations

import numpy as np

from alignrec.data.dataset import SequenceDataset
from alignrec.serve import records
from alignrec.serve.recommender import PopularityRecommender, TopKRecommender

Shard = tuple[int, list[tuple[str, bytes]]]
"""A shard's id and its ``(original user id, encoded list)`` records."""


class ListMaker:
    """Encoded lists for a shard of users: the model for users with enough history, popularity for the rest."""

    def __init__(
        self,
        dataset: SequenceDataset,
        recommender: TopKRecommender,
        k: int,
        min_history: int,
    ) -> None:
        self.dataset = dataset
        self.recommender = recommender
        self.popularity = PopularityRecommender(dataset)
        self.k = k
        self.min_history = min_history

    def __call__(self, users: np.ndarray) -> list[tuple[str, bytes]]:
        histories = [self.dataset.sequence(int(u)) for u in users]
        short = np.array([len(h) < self.min_history for h in histories], dtype=bool)
        items = np.empty((len(users), self.k), dtype=np.int64)
        scores = np.empty((len(users), self.k), dtype=np.float32)
        for mask, model in ((~short, self.recommender), (short, self.popularity)):
            if mask.any():
                rows = np.flatnonzero(mask)
                items[rows], scores[rows] = model.recommend([histories[r] for r in rows], self.k)
        return [
            (str(self.dataset.user_ids[u]), records.encode(items[row], scores[row], bool(short[row])))
            for row, u in enumerate(users)
        ]
