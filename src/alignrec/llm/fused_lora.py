"""A LoRA projection as one autograd node whose GEMMs accumulate its update in place (``llm.fused_lora``).

Why: peft computes a LoRA projection as ``base(x) + B(A(x)) * scaling``: the full-width product
``B(A(x))`` is written out, multiplied by the scale and added to the base output, each a pass over
a tokens x out tensor; its backward computes the input's gradient twice, ``dy @ W`` and
``dh @ A``, into two tokens x in tensors and sums them. On a CPU such passes are memory-bound: they
took about a tenth of a training step. Here ``addmm_`` accumulates the scaled ``A(x) @ B^T`` into
the base output inside the GEMM, and the backward accumulates ``dh @ A`` into ``dy @ W`` the same
way, the scale applied to the rank-r tensors. The same sums; under bf16 autocast rounded once
instead of after each step.
"""

from __future__ import annotations

import types

import torch


class _LoRALinear(torch.autograd.Function):
    """``x @ W^T (+ bias) + scaling * (x @ A^T) @ B^T`` over 2-D ``x`` in ``dtype``, for a frozen ``W``
    and bias: they get no gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # noqa: ANN001
                lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float, dtype: torch.dtype) -> torch.Tensor:
        ctx.dtypes = (x.dtype, lora_a.dtype, lora_b.dtype)
        x, w, a, b = (t.to(dtype) for t in (x, weight, lora_a, lora_b))
        out = x @ w.t() if bias is None else torch.addmm(bias.to(dtype), x, w.t())
        reduced = x @ a.t()
        out.addmm_(reduced, b.t(), alpha=scaling)
        ctx.save_for_backward(x, w, a, b, reduced)
        ctx.scaling = scaling
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # noqa: ANN001
        x, w, a, b, reduced = ctx.saved_tensors
        grad = grad.to(w.dtype)
        grad_reduced = (grad @ b).mul_(ctx.scaling)
        grad_x = grad @ w
        grad_x.addmm_(grad_reduced, a)
        grad_a = (grad_reduced.t() @ x).to(ctx.dtypes[1])
        grad_b = (grad.t() @ reduced).mul_(ctx.scaling).to(ctx.dtypes[2])
        return grad_x.to(ctx.dtypes[0]), None, None, grad_a, grad_b, None, None


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
    base = self.base_layer
    frozen = not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad)
    if (args or kwargs or self.disable_adapters or self.merged or len(active) != 1 or not frozen
            or (not autocast and x.dtype != self.lora_A[active[0]].weight.dtype)):
        return type(self).forward(self, x, *args, **kwargs)  # peft's own path
    (name,) = active
    dtype = torch.get_autocast_dtype(x.device.type) if autocast else x.dtype
    with torch.autocast(x.device.type, enabled=False):  # the node casts its operands itself
        out = _LoRALinear.apply(x.reshape(-1, x.shape[-1]), base.weight, base.bias, self.lora_A[name].weight,
                                self.lora_B[name].weight, self.scaling[name], dtype)
    return out.view(*x.shape[:-1], out.shape[-1])


def fuse_lora_updates(model: torch.nn.Module) -> None:
    """Every fusable LoRA layer of ``model`` computes its update by ``addmm``. Any
    call peft's fused form does not cover (adapters disabled or merged, several active, per-call
    adapter names, a base layer that trains) takes peft's own forward."""
    for layer in model.modules():
        if _fusable(layer):
            layer.forward = types.MethodType(_fused_forward, layer)
