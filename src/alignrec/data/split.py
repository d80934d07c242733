"""Leave-one-out: the last item is the test target, the one before it validation.

A user with fewer than three interactions has no room for both targets; all of
their items are training data and they are not evaluated (``stats`` counts them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignrec.data.dataset import SequenceDataset

Split = Literal["valid", "test"]
SPLITS: tuple[Split, ...] = ("valid", "test")
MIN_EVAL_LENGTH = 3


def _holdout(split: Split) -> int:
    """How many items at the end of a sequence the split hides from the model."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return 1 if split == "test" else 2


def eval_users(dataset: SequenceDataset) -> np.ndarray:
    """Internal ids of users long enough to evaluate, ascending."""
    return np.flatnonzero(dataset.lengths >= MIN_EVAL_LENGTH)


def targets(dataset: SequenceDataset, users: np.ndarray, split: Split) -> np.ndarray:
    """The held-out item of each user for ``split``."""
    return dataset.items[dataset.offsets[np.asarray(users) + 1] - _holdout(split)].astype(np.int64)


def history(dataset: SequenceDataset, user: int, split: Split) -> np.ndarray:
    """What the model may see when predicting ``split``'s target: everything before it."""
    sequence = dataset.sequence(user)
    if len(sequence) < MIN_EVAL_LENGTH:
        raise ValueError(f"user {dataset.user_ids[user]} has {len(sequence)} items: not evaluable")
    return sequence[: len(sequence) - _holdout(split)]


def train_sequence(dataset: SequenceDataset, user: int, with_valid: bool = False) -> np.ndarray:
    """The part of a user's sequence any model may train on (no validation or test target).

    ``with_valid`` adds the validation target, for a final fit once settings are chosen;
    the test target stays hidden.
    """
    sequence = dataset.sequence(user)
    if len(sequence) < MIN_EVAL_LENGTH:
        return sequence
    return sequence[:-1] if with_valid else sequence[:-2]
