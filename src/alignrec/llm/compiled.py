"""RMSNorm, the SiLU gate and RoPE of a training step as ``torch.compile``'d kernels (``llm.compile_elementwise``).

Why: in eager mode an RMSNorm is six passes over the tokens x hidden activations (cast, square, mean,
rsqrt, two products), the MLP's ``silu(gate) * up`` two over tokens x 1,536 and Llama's RoPE ten
over the queries and keys (products, a negation, a concatenation, sums, in fp32 because the
cos/sin tables are), each writing a tensor the backward reads again; on a CPU such passes are
memory-bound, and with them the backward's. Inductor fuses each into one loop forward and one
backward. Only training steps on the CPU use the kernels (grad enabled, CPU tensors); decoding and
validation keep the eager forward, so their shapes never trigger a compile. Shapes are dynamic: a
packed batch's width varies.

The attention's training forward is written here (transformers' own, step for step) so that RoPE's
kernel sees the projections' layout and q, k and v are projected as one LoRA node
(:func:`alignrec.llm.fused_lora.stacked_projection`); no function of transformers is replaced.
"""

from __future__ import annotations

import os
import shutil
import types
from functools import cache

import torch
import torch.nn.functional as F

from alignrec.llm.fused_lora import stacked_projection
from alignrec.llm.precision import emits_autocast_dtype, is_rms_norm


@cache
def compiler_available() -> bool:
    """Inductor's CPU kernels are C++ built at run time: without a compiler they cannot exist."""
    return any(shutil.which(name) for name in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if name)


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float, dtype: torch.dtype | None) -> torch.Tensor:
    """transformers' Llama RMSNorm, term for term; then cast to ``dtype`` if given, in the same loop."""
    normed = hidden.float()
    normed = normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + eps)
    out = weight * normed.to(hidden.dtype)
    return out if dtype is None else out.to(dtype)


def _silu_gate(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, -1)
    return torch.cat((-second, first), -1)


def _rotary(query: torch.Tensor, key: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """transformers' Llama RoPE on [B, T, H, D] queries and keys (the projections' own layout, so the
    output needs no copy on its way to attention), rounded back to their dtype: under autocast the
    fp32 result was rounded to bf16 by the attention's matmuls anyway."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    return ((query * cos + _rotate_half(query) * sin).to(query.dtype),
            (key * cos + _rotate_half(key) * sin).to(key.dtype))


@cache
def _kernels() -> tuple:
    return tuple(torch.compile(function, dynamic=True) for function in (_rms_norm, _silu_gate, _rotary))


def _compiling(tensor: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and tensor.device.type == "cpu"


def _norm_forward(self: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if not _compiling(hidden):
        return self._alignrec_eager_forward(hidden)
    # ``llm.norm_casts`` casts the output to the autocast dtype by a hook: the kernel casts in its loop
    # instead (the hook then has nothing left to do), saving a pass over the output and its gradient
    emits = torch.is_autocast_enabled("cpu") and emits_autocast_dtype(self)
    dtype = torch.get_autocast_dtype("cpu") if emits else None
    with torch.autocast("cpu", enabled=False):  # elementwise in fp32, as eager autocast runs it
        return _kernels()[0](hidden, self.weight, self.variance_epsilon, dtype)


def _mlp_forward(self: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    if not _compiling(hidden):
        return self._alignrec_eager_forward(hidden)
    gate, up = self.gate_proj(hidden), self.up_proj(hidden)
    with torch.autocast("cpu", enabled=False):
        gated = _kernels()[1](gate, up)
    return self.down_proj(gated)


def _attention_forward(self: torch.nn.Module, hidden_states: torch.Tensor,
                       position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                       attention_mask: torch.Tensor | None = None, cache: object | None = None,
                       **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:  # noqa: ANN003
    """transformers' ``LlamaAttention.forward`` for a training step (no cache), with q, k and v
    projected as one node (:func:`alignrec.llm.fused_lora.stacked_projection`) and RoPE compiled on their own
    [B, T, H, D] layout; any other call is transformers' own."""
    if cache is not None or "past_key_values" in kwargs or not _compiling(hidden_states):
        return self._alignrec_eager_forward(hidden_states, position_embeddings, attention_mask, cache, **kwargs)
    from transformers.models.llama.modeling_llama import ALL_ATTENTION_FUNCTIONS, eager_attention_forward

    tokens = hidden_states.shape[:-1]
    projections = (self.q_proj, self.k_proj, self.v_proj)
    stacked = stacked_projection(projections, hidden_states)
    outputs = ([layer(hidden_states) for layer in projections] if stacked is None
               else stacked.split([layer.out_features for layer in projections], -1))
    query, key, value = (out.view(*tokens, -1, self.head_dim) for out in outputs)
    cos, sin = position_embeddings
    with torch.autocast("cpu", enabled=False):
        query, key = _kernels()[2](query, key, cos, sin)
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
    out, weights = attend(self, query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attention_mask,
                          dropout=self.attention_dropout if self.training else 0.0, scaling=self.scaling, **kwargs)
    return self.o_proj(out.reshape(*tokens, -1).contiguous()), weights


def _is_llama_attention(module: torch.nn.Module) -> bool:
    from transformers.models.llama.modeling_llama import LlamaAttention

    return type(module) is LlamaAttention


def _is_rms_norm(module: torch.nn.Module) -> bool:
    return is_rms_norm(module) and hasattr(module, "variance_epsilon")


def _is_silu_mlp(module: torch.nn.Module) -> bool:
    from transformers.activations import SiLUActivation

    return all(hasattr(module, name) for name in ("gate_proj", "up_proj", "down_proj")) and isinstance(
        getattr(module, "act_fn", None), SiLUActivation | torch.nn.SiLU)


def compile_elementwise(model: torch.nn.Module) -> None:
    """Give every Llama-style RMSNorm and SiLU-gated MLP of ``model``, and RoPE in its Llama attention,
    the compiled training forward (nothing changes without a C++ compiler). Forward hooks
    (``llm.norm_casts``) still run on the output."""
    if not compiler_available():
        return
    for module in model.modules():
        forward = (_norm_forward if _is_rms_norm(module) else _mlp_forward if _is_silu_mlp(module)
                   else _attention_forward if _is_llama_attention(module) else None)
        if forward is not None:
            module._alignrec_eager_forward = module.forward
            module.forward = types.MethodType(forward, module)
