"""When each history item happened, as extra embeddings added to a sequence model's input.

- *Gap*: seconds since the previous item, in buckets (same second, up to 10 s,
  1 min, 10 min, 1 h, 1 day, longer). Items rated in the same second are one
  burst, and the next item often belongs to it: on ML-1M, 42% of test items
  share their second with the validation item, and SASRec ranks those twice as
  well (``bench/ties.py``). Without a clock the model cannot tell a burst from
  a return weeks later.
- *Date* (optional): which of ``DATE_BUCKETS`` equal-count spans of the training
  period the item fell in, so the model can learn what was current when. Under
  leave-one-out this also hands the model the split's known leak: other users'
  training items can be later than a user's test item, and a date bucket learns
  from them. Gaps carry no such leak.

Both only read the history's own timestamps, never the target's. Unknown times
(a history posted without them, or the first item's gap) get their own bucket.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PAD_BUCKET, UNKNOWN_BUCKET = 0, 1
GAP_EDGES_S = (0.5, 10.5, 60.5, 600.5, 3600.5, 86400.5)
"""Upper edges of the gap buckets, in seconds."""
DATE_BUCKETS = 32


def date_edges(stamps: np.ndarray) -> np.ndarray:
    """Edges cutting the training timestamps into ``DATE_BUCKETS`` spans of equal counts."""
    return np.quantile(np.asarray(stamps, dtype=np.float64), np.linspace(0, 1, DATE_BUCKETS + 1)[1:-1])


class TimeInputs(nn.Module):
    """[batch, L] item ids + [batch, L] float64 timestamps -> [batch, L, hidden] to add to the input."""

    def __init__(self, hidden: int, dates: bool = False) -> None:
        super().__init__()
        first = UNKNOWN_BUCKET + 1
        self.gap_embedding = nn.Embedding(first + len(GAP_EDGES_S) + 1, hidden, padding_idx=PAD_BUCKET)
        self.date_embedding = nn.Embedding(first + DATE_BUCKETS, hidden, padding_idx=PAD_BUCKET) if dates else None
        self.register_buffer("gap_edges", torch.tensor(GAP_EDGES_S, dtype=torch.float64))
        self.register_buffer("date_edges", torch.zeros(DATE_BUCKETS - 1, dtype=torch.float64))
        for table in (self.gap_embedding, self.date_embedding):
            if table is not None:
                nn.init.normal_(table.weight, std=hidden**-0.5)
                with torch.no_grad():
                    table.weight[PAD_BUCKET].zero_()

    def set_date_edges(self, edges: np.ndarray) -> None:
        """The training period's spans (``date_edges``); saved with the weights."""
        self.date_edges.copy_(torch.as_tensor(edges, dtype=torch.float64))

    def buckets(self, padded: torch.Tensor, stamps: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gap and date bucket of every position (PAD_BUCKET under padding)."""
        real = padded != 0
        unknown = torch.where(real, UNKNOWN_BUCKET, PAD_BUCKET)
        if stamps is None:
            return unknown, unknown
        stamps = stamps.to(torch.float64)
        first = UNKNOWN_BUCKET + 1
        date = torch.where(real, first + torch.bucketize(stamps, self.date_edges), PAD_BUCKET)
        gap = torch.zeros_like(stamps)
        gap[:, 1:] = stamps[:, 1:] - stamps[:, :-1]
        has_previous = torch.zeros_like(real)
        has_previous[:, 1:] = real[:, :-1]
        gap_bucket = torch.where(has_previous, first + torch.bucketize(gap, self.gap_edges), unknown)
        return gap_bucket, date

    def forward(self, padded: torch.Tensor, stamps: torch.Tensor | None) -> torch.Tensor:
        gap, date = self.buckets(padded, stamps)
        added = self.gap_embedding(gap)
        return added + self.date_embedding(date) if self.date_embedding is not None else added
