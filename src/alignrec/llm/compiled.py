"""RMSNorm and the SiLU gate of a training step as ``torch.compile``'d kernels (``llm.compile_elementwise``).

Why: in eager mode an RMSNorm is six passes over the tokens x hidden activations (cast, square, mean,
rsqrt, two products) and the MLP's ``silu(gate) * up`` two over tokens x 1,536, each writing a
tensor the backward reads again; on a CPU such passes are memory-bound, and with them the
backward's. Inductor fuses each into one loop forward and one backward. Only training steps on the
CPU use the kernels (grad enabled, CPU tensors); decoding and validation keep the eager forward, so
their shapes never trigger a compile. Shapes are dynamic: a packed batch's width varies.
"""

from __future__ import annotations

import os
import shutil
import types
from functools import cache

import torch
import torch.nn.functional as F


@cache
def compiler_available() -> bool:
    """Inductor's CPU kernels are C++ built at run time: without a compiler they cannot exist."""
    return any(shutil.which(name) for name in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if name)


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformers' Llama RMSNorm, term for term."""
    normed = hidden.float()
    normed = normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(hidden.dtype)


def _silu_gate(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


@cache
def _kernels() -> tuple:
    return torch.compile(_rms_norm, dynamic=True), torch.compile(_silu_gate, dynamic=True)


def _compiling(tensor: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and tensor.device.type == "cpu"


def _norm_forward(self: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if not _compiling(hidden):
        return self._alignrec_eager_forward(hidden)
    with torch.autocast("cpu", enabled=False):  # elementwise in fp32, as eager autocast runs it
        return _kernels()[0](hidden, self.weight, self.variance_epsilon)


def _mlp_forward(self: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if not _compiling(hidden):
        return self._alignrec_eager_forward(hidden)
    gate, up = self.gate_proj(hidden), self.up_proj(hidden)
    with torch.autocast("cpu", enabled=False):
        gated = _kernels()[1](gate, up)
    return self.down_proj(gated)


def _is_rms_norm(module: torch.nn.Module) -> bool:
    return type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon")


def _is_silu_mlp(module: torch.nn.Module) -> bool:
    from transformers.activations import SiLUActivation

    return all(hasattr(module, name) for name in ("gate_proj", "up_proj", "down_proj")) and isinstance(
        getattr(module, "act_fn", None), SiLUActivation | torch.nn.SiLU)


def compile_elementwise(model: torch.nn.Module) -> None:
    """Give every Llama-style RMSNorm and SiLU-gated MLP of ``model`` the compiled training forward
    (nothing changes without a C++ compiler). Forward hooks (``llm.norm_casts``) still run on the output."""
    if not compiler_available():
        return
    for module in model.modules():
        forward = _norm_forward if _is_rms_norm(module) else _mlp_forward if _is_silu_mlp(module) else None
        if forward is not None:
            module._alignrec_eager_forward = module.forward
            module.forward = types.MethodType(forward, module)
