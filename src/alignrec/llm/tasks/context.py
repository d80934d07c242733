"""What the task builders read: the training split only, item facts, and the prompt sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import train_sequence
from alignrec.llm.tasks.metadata import ItemFacts


@dataclass
class TaskContext:
    facts: ItemFacts
    train_sequences: list[np.ndarray]
    """Per user, the items any model may train on: validation and test targets removed."""
    seen: list[set[int]]
    """Per user, every item they interacted with (held-out ones too): never drawn as a negative."""
    num_items: int
    history: int
    negatives: int
    titles_in_history: bool = False

    @classmethod
    def from_dataset(
        cls, dataset: SequenceDataset, history: int, negatives: int, titles_in_history: bool = False
    ) -> TaskContext:
        sequences = [train_sequence(dataset, u) for u in range(dataset.num_users)]
        facts = ItemFacts(dataset)
        seen = [set(dataset.sequence(u).tolist()) for u in range(dataset.num_users)]
        return cls(facts, sequences, seen, dataset.num_items, history, negatives, titles_in_history and facts.has_titles)

    def windows(self, sequence: np.ndarray) -> list[np.ndarray]:
        """Windows of ``history + 1`` items from the end, overlapping by one item, so every
        item but the user's first is a prediction target exactly once."""
        size = self.history + 1
        windows = []
        end = len(sequence)
        while end >= 2:
            windows.append(sequence[max(0, end - size) : end])
            end -= size - 1
        return windows[::-1]
