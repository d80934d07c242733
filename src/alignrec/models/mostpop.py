"""MostPop: every user gets the most interacted items they do not have yet.

One class for evaluation and serving; only what it may count differs. Evaluated
at a split, it counts the interactions visible before that split's targets (a
test target never counts towards its own popularity); served, it counts all.
"""

from __future__ import annotations

import numpy as np

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import MIN_EVAL_LENGTH, Split
from alignrec.recommender import NO_ITEM
from alignrec.rundir import RunDir


def visible_counts(dataset: SequenceDataset, horizon: Split | None) -> np.ndarray:
    """Interactions per item, without each evaluable user's held-out items at ``horizon``
    (``test``: the last; ``valid``: the last two; None: nothing held out)."""
    if horizon is None:
        return np.bincount(dataset.items, minlength=dataset.num_items).astype(np.float32)
    holdout = 1 if horizon == "test" else 2
    lengths = dataset.lengths
    ends = dataset.offsets[1:] - np.where(lengths >= MIN_EVAL_LENGTH, holdout, 0)
    position = np.arange(dataset.num_interactions) - np.repeat(dataset.offsets[:-1], lengths)
    visible = position < np.repeat(ends - dataset.offsets[:-1], lengths)
    return np.bincount(dataset.items[visible], minlength=dataset.num_items).astype(np.float32)


class MostPop:
    """Score = interaction count; equal counts go to the lower item id."""

    name = "mostpop"
    batch_size = 1024

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.float32)
        self.order = np.lexsort((np.arange(len(self.counts)), -self.counts))

    @classmethod
    def fit(cls, dataset: SequenceDataset, horizon: Split | None = None) -> MostPop:
        return cls(visible_counts(dataset, horizon))

    def recommend(
        self, histories: list[np.ndarray], k: int, exclude_history: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        items = np.full((len(histories), k), NO_ITEM, dtype=np.int64)
        scores = np.full((len(histories), k), -np.inf, dtype=np.float32)
        for row, history in enumerate(histories):
            # The best k + len(history) always hold k items the user does not have.
            head = self.order[: k + len(history)] if exclude_history else self.order[:k]
            best = head[~np.isin(head, history)][:k] if exclude_history else head
            items[row, : len(best)] = best
            scores[row, : len(best)] = self.counts[best]
        return items, scores


def load_recommender(run: RunDir, dataset: SequenceDataset, horizon: Split | None = None) -> MostPop:
    """The catalog's loader: nothing is trained, the counts come from the run's dataset."""
    return MostPop.fit(dataset, horizon)
