"""A model that only decodes in bf16 stores its linear weights in bf16.

Why: autocast casts every fp32 linear weight to bf16 on every forward (it caches casts only
for weights that need a gradient), so a beam search recast the whole model, the 50k x 576
head above all, at each of its levels. Stored in bf16 they are exactly the tensors autocast
would have made, so the lists and scores are unchanged. Embeddings and norms stay fp32, as
autocast keeps them, so the residual stream is fp32 as before. Training keeps fp32 weights
(LoRA and the code rows learn in fp32); this is for a loaded, merged model only.
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
