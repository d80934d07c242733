"""LoRA's update added into its base projection's output by the matmul that computes it (``llm.fused_lora``).

Why: peft computes a LoRA projection as ``base(x) + B(A(x)) * scaling``: the full-width product
``B(A(x))`` is written out, multiplied by the scale and added to the base output, each a pass over
a tokens x out tensor (and the scale's multiply again in the backward). On a CPU such passes are
memory-bound: they took about a tenth of a training step. ``addmm_`` accumulates ``A(x) @ B^T``,
scaled, into the base output inside the GEMM, in place, and the backward scales the rank-r tensor instead.
The same sum; under bf16 autocast rounded once instead of after each of the three steps.
"""

from __future__ import annotations

import types

import torch


def _fusable(layer: torch.nn.Module) -> bool:
    """A peft LoRA ``Linear`` over an ``nn.Linear`` with vanilla adapters only: no dropout, variant
    (DoRA), bias on B or transposed weights, whose update is exactly ``B(A(x)) * scaling``."""
    from peft.tuners.lora.layer import Linear

    return (
        type(layer) is Linear and type(layer.base_layer) is torch.nn.Linear and not layer.fan_in_fan_out
        and not layer.lora_variant
        and all(isinstance(layer.lora_dropout[name], torch.nn.Identity) for name in layer.lora_A)
        and all(layer.lora_B[name].bias is None for name in layer.lora_B)
    )


def _fused_forward(self: torch.nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
    active = [name for name in self.active_adapters if name in self.lora_A]
    autocast = torch.is_autocast_enabled(x.device.type)
    if (args or kwargs or self.disable_adapters or self.merged or len(active) != 1
            or (not autocast and x.dtype != self.lora_A[active[0]].weight.dtype)):
        return type(self).forward(self, x, *args, **kwargs)  # peft's own path
    (name,) = active
    # Flattened first, so the in-place update lands on the matmul's own 2-D output, not on a view of it
    # (autograd would clone the gradient and copy it back twice per layer for a view).
    flat = x.reshape(-1, x.shape[-1])
    result = self.base_layer(flat)
    reduced = self.lora_A[name](flat)
    # in place: the base matmul's output is saved by nothing for the backward
    result.addmm_(reduced.to(result.dtype), self.lora_B[name].weight.t().to(result.dtype), alpha=self.scaling[name])
    return result.view(*x.shape[:-1], result.shape[-1])


def fuse_lora_updates(model: torch.nn.Module) -> None:
    """Every fusable LoRA layer of ``model`` computes its update by ``addmm``. Any
    call peft's fused form does not cover (adapters disabled or merged, several active, per-call
    adapter names) takes peft's own forward."""
    for layer in model.modules():
        if _fusable(layer):
            layer.forward = types.MethodType(_fused_forward, layer)
