"""The lists of one shard of users: the unit of work every precompute engine runs.

Equal snapshots are byte-equal: the same users, each with the same items in the
same order and the same float32 scores (``records.digest`` hashes exactly that).
A model's scores are sums of products, and a float32 sum depends on the order
in which it is added up; torch splits that work by its number of threads, so a
Ray actor with one CPU and a local job with all of them would write different
last bits, and ties could swap places. Rounding the scores would not fix it (a
value near a rounding boundary still flips), and float64 scoring would only make
a flip rarer while making the LLM slower. So every engine scores a shard with
the same, declared number of threads (``serve.threads``, part of the job's
fingerprint), pinned around the model call whatever the process was started
with. The arithmetic is then the same in every process, local or Ray, on any
node size; what remains is the CPU's instruction set, which decides the kernels
torch runs: a cluster of one CPU kind and the locked library versions give one
digest, and the snapshot records the capability its driver scored with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.models.mostpop import MostPop
from alignrec.recommender import Recommender
from alignrec.serve import records

Shard = tuple[int, list[tuple[str, bytes]]]
"""A shard's id and its ``(original user id, encoded list)`` records."""


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ListMaker:
    """Encoded lists for a shard of users: the model for users with enough history, popularity for the rest."""

    def __init__(
        self,
        dataset: SequenceDataset,
        recommender: Recommender,
        k: int,
        min_history: int,
        threads: int = 1,
    ) -> None:
        self.dataset = dataset
        self.recommender = recommender
        self.popularity = MostPop.fit(dataset)
        self.k = k
        self.min_history = min_history
        self.threads = threads

    def __call__(self, users: np.ndarray) -> list[tuple[str, bytes]]:
        histories = [self.dataset.sequence(int(u)) for u in users]
        short = np.array([len(h) < self.min_history for h in histories], dtype=bool)
        items = np.empty((len(users), self.k), dtype=np.int64)
        scores = np.empty((len(users), self.k), dtype=np.float32)
        with pinned_threads(self.threads):
            for mask, model in ((~short, self.recommender), (short, self.popularity)):
                if mask.any():
                    rows = np.flatnonzero(mask)
                    items[rows], scores[rows] = model.recommend([histories[r] for r in rows], self.k)
        return [
            (str(self.dataset.user_ids[u]), records.encode(items[row], scores[row], bool(short[row])))
            for row, u in enumerate(users)
        ]
