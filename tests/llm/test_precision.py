"""Which weights ``store_frozen_linears_in_bf16`` moves: frozen linear weights, never an embedding or a trainable one."""

from __future__ import annotations

import torch

from alignrec.llm.precision import store_frozen_linears_in_bf16


def test_only_frozen_linears_not_tied_to_an_embedding_move_to_bf16() -> None:
    embed = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = embed.weight  # tied, as in SmolLM2
    frozen = torch.nn.Linear(4, 4)
    trained = torch.nn.Linear(4, 4)
    model = torch.nn.ModuleList([embed, head, frozen, trained])
    for param in [embed.weight, frozen.weight, frozen.bias]:
        param.requires_grad_(False)
    before = frozen.weight.detach().clone()
    assert store_frozen_linears_in_bf16(model) == 4 * 4 + 4
    assert frozen.weight.dtype == frozen.bias.dtype == torch.bfloat16
    assert torch.equal(frozen.weight, before.to(torch.bfloat16))
    assert embed.weight.dtype == torch.float32 and head.weight is embed.weight
    assert trained.weight.dtype == torch.float32
