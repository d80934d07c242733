"""Where bf16 autocast would recast the same tensors again and again, cast them once.

A model that only decodes in bf16 stores its linear weights in bf16 (``store_linears_in_bf16``);
under autocast every RMSNorm hands on bf16 (``norms_emit_autocast_dtype``, training and decoding).

Why: autocast casts every fp32 linear weight to bf16 on every forward (it caches casts only
for weights that need a gradient), so a beam search recast the whole model, the 50k x 576
head above all, at each of its levels. Stored in bf16 they are exactly the tensors autocast
would have made, so the lists and scores are unchanged. Embeddings and norms stay fp32, as
autocast keeps them, so the residual stream is fp32 as before. Training keeps fp32 weights
(LoRA and the code rows learn in fp32); storing is for a loaded, merged model only.
"""

from __future__ import annotations

import torch


def store_linears_in_bf16(model: torch.nn.Module) -> None:
    """Every ``nn.Linear``'s weight and bias in bf16, in place; a head tied to the input embedding
    gets its own bf16 copy (the embedding stays fp32). The model no longer trains."""
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight = torch.nn.Parameter(module.weight.detach().to(torch.bfloat16), requires_grad=False)
            if module.bias is not None:
                module.bias = torch.nn.Parameter(module.bias.detach().to(torch.bfloat16), requires_grad=False)
    model.config.tie_word_embeddings = False  # nothing may re-tie the bf16 head to the fp32 embedding


def is_rms_norm(module: torch.nn.Module) -> bool:
    """transformers' RMSNorms (``LlamaRMSNorm``, ``Qwen2RMSNorm``, ...) share the name, not a class."""
    return type(module).__name__.endswith("RMSNorm")


def _autocast_output(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    device = output.device.type
    if torch.is_autocast_enabled(device):
        return output.to(torch.get_autocast_dtype(device))
    return output


def norms_emit_autocast_dtype(model: torch.nn.Module) -> None:
    """Under autocast, every RMSNorm hands its output on already in the autocast dtype.

    Why: a norm's fp32 output feeds several projections (q, k, v; gate, up) and their LoRA branches,
    and autocast casts it to bf16 once per consumer, saving each copy for the backward pass. One
    cast at the norm gives the same bf16 tensor to all of them (the same forward values), and LoRA's
    own cast of its input to its fp32 weights' dtype is switched off, so autocast casts the weights,
    not the activations. The backward then sums the consumers' gradients in bf16 instead of fp32.
    Outside autocast nothing changes."""
    for module in model.modules():
        if is_rms_norm(module):
            module.register_forward_hook(_autocast_output)
        if hasattr(module, "lora_A"):
            module.cast_input_dtype_enabled = False


def emits_autocast_dtype(module: torch.nn.Module) -> bool:
    """Whether ``norms_emit_autocast_dtype`` gave ``module`` its cast."""
    return any(hook is _autocast_output for hook in module._forward_hooks.values())
