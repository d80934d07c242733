"""Segment attention gives what SDPA gives under the packed rows' block-diagonal causal mask."""

import torch
import torch.nn.functional as F

from alignrec.llm.attention import SegmentLayout, segment_attention


def packed_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, 1, T, T]: causal within each run of positions that restarts at 0."""
    example = (position_ids == 0).cumsum(dim=1)
    same = example[:, :, None] == example[:, None, :]
    causal = torch.ones(position_ids.shape[1], position_ids.shape[1], dtype=torch.bool).tril()
    return (same & causal)[:, None]


def test_segment_attention_equals_masked_sdpa_with_grouped_heads_and_its_gradients() -> None:
    torch.manual_seed(0)
    lengths = [[5, 40, 3, 16], [64], [1, 1, 30, 32]]
    width = 64
    positions = torch.stack([torch.cat([torch.arange(n) for n in row]) for row in lengths])
    assert positions.shape == (3, width)
    q = torch.randn(3, 4, width, 8, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 2, width, 8, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 2, width, 8, dtype=torch.float64, requires_grad=True)
    layout = SegmentLayout.from_position_ids(positions, multiple=16)
    ours = segment_attention(q, k, v, layout, scaling=0.3)
    theirs = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1),
                                            attn_mask=packed_mask(positions), scale=0.3).transpose(1, 2)
    assert ours.shape == (3, width, 4, 8)
    torch.testing.assert_close(ours, theirs)
    weights = torch.randn_like(ours)
    grads = torch.autograd.grad((ours * weights).sum(), (q, k, v))
    expected = torch.autograd.grad((theirs * weights).sum(), (q, k, v))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert layout.groups == 4  # widths 16, 32, 48, 64: a few calls, not one per example
