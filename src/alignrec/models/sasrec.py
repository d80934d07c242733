"""SASRec (Kang & McAuley, 2018): causal self-attention over a user's item sequence.

Sequences are left-padded to ``max_len`` with item 0 (real items are shifted
by one), so the last position always holds the most recent item. Attention is
causal and ignores padding keys. Batches may be trimmed to their longest
sequence: positions count back from the end, so trimming changes nothing. Items are scored by a dot product with the
(shared) input item embeddings, or by cosine similarity over a temperature
(``similarity="cosine"``, as in the SASRec baseline of Zhai et al.'s HSTU
code, which keeps item norms from encoding popularity alone); the trainer
chooses the loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAD = 0


def left_pad(sequences: list[np.ndarray], max_len: int, trim: bool = False) -> torch.Tensor:
    """Last ``max_len`` items of each sequence, shifted by one, left-padded with PAD.

    ``trim``: pad only to the longest sequence in the batch (less work, same result).
    """
    width = min(max_len, max((len(s) for s in sequences), default=1)) if trim else max_len
    batch = np.zeros((len(sequences), max(width, 1)), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = np.asarray(sequence[len(sequence) - batch.shape[1] :], dtype=np.int64) + 1
        if len(tail):
            batch[row, -len(tail) :] = tail
    return torch.from_numpy(batch)


class CausalBlock(nn.Module):
    """Pre-norm transformer block; attention through ``scaled_dot_product_attention``.

    No dropout on the attention matrix: on CPU, sampling a [batch, heads, L, L]
    mask cost more than the rest of the step, and residual dropout suffices.
    """

    def __init__(self, hidden: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        self.heads = heads
        self.attention_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden * ffn_mult), nn.GELU(), nn.Linear(hidden * ffn_mult, hidden)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = (
            self.qkv(self.attention_norm(x))
            .view(batch, length, 3, self.heads, hidden // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = x + self.dropout(self.attention_out(attended))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class SASRec(nn.Module):
    def __init__(
        self,
        num_items: int,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        ffn_mult: int = 4,
        dropout: float = 0.2,
        max_len: int = 200,
        similarity: str = "dot",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if similarity not in ("dot", "cosine"):
            raise ValueError(f"similarity must be dot or cosine, got {similarity!r}")
        self.cosine = similarity == "cosine"
        self.temperature = temperature if self.cosine else 1.0
        self.num_items = num_items
        self.hidden = hidden
        self.max_len = max_len
        self.item_embedding = nn.Embedding(num_items + 1, hidden, padding_idx=PAD)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(hidden, heads, ffn_mult, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_embedding.weight, std=self.hidden**-0.5)
        nn.init.normal_(self.position_embedding.weight, std=self.hidden**-0.5)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    @staticmethod
    def attention_allowed(padded: torch.Tensor) -> torch.Tensor:
        """[batch, 1, L, L], True = may attend: earlier real items, and always itself."""
        length = padded.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=padded.device).tril()
        real_keys = (padded != PAD).unsqueeze(1)
        itself = torch.eye(length, dtype=torch.bool, device=padded.device)
        return ((causal & real_keys) | itself).unsqueeze(1)

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        """[batch, length <= max_len] item ids (PAD = 0, left-padded) -> [batch, length, hidden]."""
        length = padded.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len, device=padded.device)
        x = self.item_embedding(padded) * math.sqrt(self.hidden) + self.position_embedding(positions)
        x = self.dropout(x)
        allowed = self.attention_allowed(padded)
        for block in self.blocks:
            x = block(x, allowed)
        x = self.final_norm(x)
        if self.cosine:
            x = F.normalize(x, dim=-1)
        return x * (padded != PAD).unsqueeze(-1)

    def item_vectors(self) -> torch.Tensor:
        """[num_items, hidden]: row ``i`` is dataset item ``i`` (unit length under cosine)."""
        items = self.item_embedding.weight[1:]
        return F.normalize(items, dim=-1) if self.cosine else items

    def logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Similarity of states [..., hidden] to item vectors [n, hidden], temperature-scaled.

        The temperature divides the states, not the logits: ``hidden`` numbers per row
        instead of ``n`` (a pass over the largest tensor of a training step saved).
        """
        if self.temperature != 1.0:
            states = states / self.temperature
        return states @ items.T

    def score_last(self, padded: torch.Tensor) -> torch.Tensor:
        """Scores of all items as the next item after each sequence: [batch, num_items]."""
        return self.logits(self(padded)[:, -1], self.item_vectors())
