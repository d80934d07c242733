"""Attention over packed rows without a T x T mask: each packed example attends causally to itself only.

Why: a packed row of ``max_tokens`` holds several short examples (ML-100k's are 15-114 tokens in
rows of 512). Under SDPA the row needs a block-diagonal mask, and a masked kernel computes every
query against every key of the row: about 12x the attention an example needs, forward and backward.
Here the examples of a batch are gathered into a few groups of similar length, padded to the
group's width, and each group is one causal attention with no mask. Padding sits after an
example's end, where causal attention never looks, so the result is exactly the masked one. A handful of calls per layer, not one per example: an
example-by-example attention loses in the backward pass what it gains in the forward.

Used by training, which passes ``segments=SegmentLayout.from_position_ids(...)`` through the model's
forward; any other call (decoding, with its own masks) is plain SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMPLEMENTATION = "alignrec_segments"
"""The name under which transformers finds this attention (``config._attn_implementation``)."""


@dataclass(frozen=True)
class SegmentLayout:
    """Where the packed examples of a batch lie, grouped by padded width.

    One gather and one scatter serve all groups: per group and per layer, an ``index_select``
    costs its backward a zero-filled tensor of the whole batch, an ``index_add`` into it and a sum
    with the other groups'; one gather costs one of each (1.02x a training step on a CPU)."""

    gather: torch.Tensor
    """Flat token index of each padded slot, the groups' [examples, width] slots one after another
    (a pad slot repeats its example's last token)."""
    widths: tuple[tuple[int, int], ...]
    """(examples, padded width) of each group, in ``gather``'s order."""
    restore: torch.Tensor
    """For each token of the batch, in order, the slot of ``gather`` that holds it."""
    shape: tuple[int, int]
    """(rows, row width) of the batch."""

    @property
    def groups(self) -> int:
        return len(self.widths)

    @classmethod
    def from_position_ids(cls, position_ids: torch.Tensor, multiple: int = 32) -> SegmentLayout:
        """An example starts wherever a row's position id restarts at 0 (as packing writes them);
        examples whose lengths round up to the same multiple of ``multiple`` share a group."""
        positions = position_ids.detach().cpu().numpy()
        rows, width = positions.shape
        starts, lengths = [], []
        for row in range(rows):
            begin = np.flatnonzero(positions[row] == 0)
            if begin.size == 0 or begin[0] != 0:
                begin = np.concatenate([[0], begin])
            ends = np.append(begin[1:], width)
            starts.append(row * width + begin)
            lengths.append(ends - begin)
        start, length = np.concatenate(starts), np.concatenate(lengths)
        padded = -(-length // multiple) * multiple
        gathers, widths, tokens, slots = [], [], [], []
        offset = 0
        for size in np.unique(padded):
            chosen = np.flatnonzero(padded == size)
            offsets = np.minimum(np.arange(size)[None, :], length[chosen, None] - 1)
            gather = start[chosen, None] + offsets
            is_real = np.arange(size)[None, :] < length[chosen, None]
            gathers.append(gather.ravel())
            widths.append((int(chosen.size), int(size)))
            tokens.append(gather[is_real])
            slots.append(offset + np.flatnonzero(is_real))
            offset += gather.size
        restore = np.empty(rows * width, dtype=np.int64)
        restore[np.concatenate(tokens)] = np.concatenate(slots)
        device = position_ids.device
        return cls(torch.as_tensor(np.concatenate(gathers), device=device), tuple(widths),
                   torch.as_tensor(restore, device=device), (rows, width))


def causal_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scaling: float | None,
                     dropout: float) -> torch.Tensor:
    """Causal attention of [E, H, L, D] queries over [E, H_kv, L, D] keys and values, written out as two
    batched matmuls: at these widths (<= a few hundred) the fused CPU kernel's backward cost about
    as much as it did over whole masked rows, the matmuls' a fifth of that.

    The query heads that share a key head are stacked along the length (no copies of the keys and
    values per query head, nor their sum in the backward), and one ``baddbmm`` scales the scores
    and adds the causal mask as a bias inside the matmul: no separate passes over the E x H x L x L
    scores for either. The softmax runs in the scores' dtype (its CPU kernel accumulates bf16 in
    fp32)."""
    examples, heads, size, width = query.shape
    groups = key.shape[1]
    repeat = heads // groups
    stacked = query.reshape(examples * groups, repeat * size, width)  # heads of a group, one after another
    hidden = torch.ones(size, size, dtype=torch.bool, device=query.device).triu(1)
    bias = torch.zeros(size, size, dtype=query.dtype, device=query.device).masked_fill_(hidden, float("-inf"))
    scale = scaling if scaling is not None else width**-0.5
    scores = torch.baddbmm(bias.repeat(repeat, 1), stacked, key.reshape(examples * groups, size, width).transpose(1, 2),
                           alpha=scale)
    weights = scores.softmax(-1).to(value.dtype)
    if dropout:
        weights = F.dropout(weights, dropout)
    out = torch.bmm(weights, value.reshape(examples * groups, size, width))
    return out.view(examples, heads, size, width)


def segment_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: SegmentLayout,
    scaling: float | None = None, dropout: float = 0.0,
) -> torch.Tensor:
    """Causal attention within each example of ``layout``: [B, H, T, D] inputs -> [B, T, H, D] output."""
    rows, width = layout.shape
    heads = query.shape[1]
    counts = [examples * size for examples, size in layout.widths]
    # [B, H, T, D] -> [B * T, H, D] (RoPE leaves q and k laid out as [B, T, H, D], so no copy), then one
    # gather for all groups; ``split``'s backward is one concatenation, not a zero tensor per group.
    slots = [s.transpose(1, 2).reshape(rows * width, s.shape[1], s.shape[3]).index_select(0, layout.gather)
             .split(counts) for s in (query, key, value)]
    pieces = []
    for (examples, size), q, k, v in zip(layout.widths, *slots, strict=True):
        q, k, v = (s.view(examples, size, s.shape[1], -1).transpose(1, 2) for s in (q, k, v))
        out = causal_attention(q, k, v, scaling, dropout)  # [examples, heads, size, D]
        pieces.append(out.transpose(1, 2).reshape(examples * size, heads, -1))
    return torch.cat(pieces).index_select(0, layout.restore).view(rows, width, heads, -1)


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: segment attention when the forward carries ``segments``, else SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    layout = kwargs.get("segments")
    if layout is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    return segment_attention(query, key, value, layout, scaling, dropout), None


attention_forward.sdpa_masks = True  # type: ignore[attr-defined]  # any call without segments is SDPA's


def register() -> None:
    """Make ``IMPLEMENTATION`` known to transformers (its masks are SDPA's, for the calls that are SDPA)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)
