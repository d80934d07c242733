"""MostPop: every user gets the items most often seen before the evaluated target."""

from __future__ import annotations

import numpy as np
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import MIN_EVAL_LENGTH, Split


class MostPop:
    """Counts interactions visible at ``split`` time; ties go to the lower item id."""

    name = "mostpop"

    def __init__(self, dataset: SequenceDataset, split: Split) -> None:
        holdout = 1 if split == "test" else 2
        lengths = dataset.lengths
        ends = dataset.offsets[1:] - np.where(lengths >= MIN_EVAL_LENGTH, holdout, 0)
        position = np.arange(dataset.num_interactions) - np.repeat(dataset.offsets[:-1], lengths)
        visible = position < np.repeat(ends - dataset.offsets[:-1], lengths)
        counts = np.bincount(dataset.items[visible], minlength=dataset.num_items).astype(np.float64)
        # Fractional tie-break below 1 keeps the order of equal counts deterministic.
        tie_break = 0.5 * (1.0 - np.arange(dataset.num_items) / max(dataset.num_items, 1))
        self.counts = counts
        self.scores = torch.from_numpy(counts + tie_break)

    def __call__(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return self.scores.unsqueeze(0).expand(len(users), -1)
