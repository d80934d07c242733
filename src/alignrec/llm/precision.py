"""Frozen base weights stored in bf16 when training under bf16 autocast.

Why: autocast casts a linear layer's fp32 weight to bf16 on every call, and it caches
that cast only for weights that require a gradient. The backbone's projections are
frozen (LoRA trains beside them), so every forward made a fresh bf16 copy of each one
and kept it for the backward: 2 extra bytes per frozen weight per step, and the cast's
time. Stored in bf16 they are exactly the tensors autocast would have made, so the
computation is unchanged. Only linear weights move: the embedding (tied to the head in
SmolLM2) and the norms stay fp32, so the residual stream stays fp32 as before; LoRA and
the code rows train in fp32.
"""

from __future__ import annotations

import torch


def store_frozen_linears_in_bf16(model: torch.nn.Module) -> int:
    """Cast every frozen fp32 ``nn.Linear`` weight not shared with an embedding to bf16, in place;
    returns how many parameters moved."""
    shared = {id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding)}
    moved = 0
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        for name in ("weight", "bias"):
            param = getattr(module, name)
            if param is None or param.requires_grad or param.dtype != torch.float32 or id(param) in shared:
                continue
            param.data = param.data.to(torch.bfloat16)
            moved += param.numel()
    return moved
