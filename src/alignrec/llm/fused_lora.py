"""A LoRA projection as one autograd node whose GEMMs accumulate its update in place (``llm.fused_lora``).

Why: peft computes a LoRA projection as ``base(x) + B(A(x)) * scaling``: the full-width product
``B(A(x))`` is written out, multiplied by the scale and added to the base output, each a pass over
a tokens x out tensor; its backward computes the input's gradient twice, ``dy @ W`` and
``dh @ A``, into two tokens x in tensors and sums them. On a CPU such passes are memory-bound: they
took about a tenth of a training step. Here ``addmm_`` accumulates the scaled ``A(x) @ B^T`` into
the base output inside the GEMM, and the backward accumulates ``dh @ A`` into ``dy @ W`` the same
way, the scale applied to the rank-r tensors. The same sums; under bf16 autocast rounded once
instead of after each step.

Projections that read the same input can run as one such node (``stacked_projection``; the
training attention of :mod:`alignrec.llm.compiled` stacks q, k and v): one GEMM over their stacked
weights, and one input gradient instead of three summed, 1.10x a training step. Gate and up,
stacked the same way, ran 0.97x (their 12 MB output and its gradient cost more than the GEMMs
saved), so the MLP keeps one node per projection.
"""

from __future__ import annotations

import types
from collections.abc import Sequence

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


def _fused_operands(layer: torch.nn.Module, x: torch.Tensor) -> tuple[str, torch.dtype] | None:
    """(active adapter, compute dtype) where a call of ``layer`` on ``x`` can take the fused path; None
    where it needs peft's: adapters disabled or merged, several active, a base layer that trains, or
    LoRA weights of another dtype than ``x`` outside autocast."""
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    autocast = torch.is_autocast_enabled(x.device.type)
    base = layer.base_layer
    frozen = not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad)
    if (layer.disable_adapters or layer.merged or len(active) != 1 or not frozen
            or (not autocast and x.dtype != layer.lora_A[active[0]].weight.dtype)):
        return None
    return active[0], torch.get_autocast_dtype(x.device.type) if autocast else x.dtype


def _fused_forward(self: torch.nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
    operands = None if args or kwargs else _fused_operands(self, x)
    if operands is None:
        return type(self).forward(self, x, *args, **kwargs)  # peft's own path
    name, dtype = operands
    base = self.base_layer
    with torch.autocast(x.device.type, enabled=False):  # the node casts its operands itself
        out = _LoRALinear.apply(x.reshape(-1, x.shape[-1]), base.weight, base.bias, self.lora_A[name].weight,
                                self.lora_B[name].weight, self.scaling[name], dtype)
    return out.view(*x.shape[:-1], out.shape[-1])


def _is_fused(layer: torch.nn.Module) -> bool:
    return getattr(layer.__dict__.get("forward"), "__func__", None) is _fused_forward


def _stacked_weight(layers: Sequence[torch.nn.Module], dtype: torch.dtype) -> torch.Tensor:
    """The frozen base weights of ``layers`` one above another, in ``dtype``: built once and kept on the
    first layer (autocast would cast each weight anew at every step), rebuilt when a weight is
    replaced or changed in place."""
    weights = [layer.base_layer.weight for layer in layers]
    key = (dtype, *((weight.data_ptr(), weight._version) for weight in weights))
    cached = layers[0].__dict__.get("_alignrec_stacked_weight")
    if cached is None or cached[0] != key:
        cached = (key, torch.cat([weight.detach() for weight in weights]).to(dtype))
        layers[0]._alignrec_stacked_weight = cached
    return cached[1]


def stacked_projection(layers: Sequence[torch.nn.Module], x: torch.Tensor) -> torch.Tensor | None:
    """The outputs of ``layers`` for the same input ``x`` (q, k and v) side by side along
    the last dimension, computed as one node; None where they cannot be: unless all are fused LoRA
    layers without bias that take the fused path with the same adapter, scale and dtype.

    The node is ``x`` times their stacked weights, plus ``x`` times their stacked A times their B's
    set block-diagonally: one GEMM of each kind instead of one per layer, and a backward that writes
    one input gradient, not one per layer to be summed."""
    operands = {_fused_operands(layer, x) if _is_fused(layer) and layer.base_layer.bias is None else None
                for layer in layers}
    if len(operands) != 1 or None in operands:
        return None
    ((name, dtype),) = operands
    scalings = {layer.scaling[name] for layer in layers}
    if len(scalings) != 1:
        return None
    lora_a = torch.cat([layer.lora_A[name].weight for layer in layers])
    lora_b = torch.block_diag(*(layer.lora_B[name].weight for layer in layers))
    with torch.autocast(x.device.type, enabled=False):
        out = _LoRALinear.apply(x.reshape(-1, x.shape[-1]), _stacked_weight(layers, dtype), None, lora_a, lora_b,
                                scalings.pop(), dtype)
    return out.view(*x.shape[:-1], out.shape[-1])


def fuse_lora_updates(model: torch.nn.Module) -> None:
    """Every fusable LoRA layer of ``model`` computes its update by ``addmm``. Any
    call peft's fused form does not cover (adapters disabled or merged, several active, per-call
    adapter names, a base layer that trains) takes peft's own forward."""
    for layer in model.modules():
        if _fusable(layer):
            layer.forward = types.MethodType(_fused_forward, layer)
