"""The output head's and the input embedding's rows as the model's forward uses them, without the
merged matrices peft builds (a full copy of the vocabulary's rows at every call, and another in the
backward), for the training loss and for decoding over the code tokens alone.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from alignrec.decode import CodeHead
from alignrec.llm.prior import PRIOR
from alignrec.llm.vocab import CodeVocabulary


def trained_rows(module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(the base weight, the ids of the rows peft trains or None, those rows as trained) of an output
    head or input embedding: what its forward would merge into one full matrix, which costs a copy of
    the whole vocabulary's rows at every call and another in the backward."""
    adapter = getattr(module, "token_adapter", module)  # peft's TrainableTokensWrapper holds the layer
    if hasattr(adapter, "trainable_tokens_delta") and len(adapter.active_adapters) == 1:
        (name,) = adapter.active_adapters
        weight = adapter.base_layer.weight
        ids = torch.as_tensor(adapter.token_indices[name], device=weight.device)
        return weight, ids, adapter.trainable_tokens_delta[name]
    return module.weight, None, None


def rows_of(module: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """[*ids.shape, hidden]: ``module``'s rows for token ``ids`` as its forward uses them, gathered
    without building the merged matrix."""
    weight, trained, values = trained_rows(module)
    if trained is None:
        return weight[ids]
    slot = torch.full((weight.shape[0],), -1, dtype=torch.long, device=ids.device)
    slot[trained] = torch.arange(len(trained), device=ids.device)
    where = slot[ids]
    return torch.where((where >= 0)[..., None], values[where.clamp(min=0)], weight[ids].to(values.dtype))


_KEPT = "_alignrec_autocast_copy"
"""The attribute of a frozen weight that holds ((its version, address, the dtype), its cast copy)."""


def autocast_copy(weight: torch.Tensor) -> torch.Tensor:
    """A frozen weight as autocast would cast it for a matmul, cast once and kept while it is unchanged.

    Why: autocast keeps its casts only of weights that train, so the frozen 49k-row head was cast
    to bf16 again at every step's text targets (a twentieth of a CPU step); its copy is the same tensor."""
    device = weight.device.type
    if weight.requires_grad or not torch.is_autocast_enabled(device):
        return weight
    dtype = torch.get_autocast_dtype(device)
    if weight.dtype == dtype or not weight.is_floating_point():
        return weight
    key = (weight._version, weight.data_ptr(), dtype)  # changed in place or re-pointed: cast again
    kept = getattr(weight, _KEPT, None)
    if kept is None or kept[0] != key:
        kept = (key, weight.detach().to(dtype))
        setattr(weight, _KEPT, kept)
    return kept[1]


def vocabulary_logits(head: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """[N, vocab]: the head's logits over the whole vocabulary, as its forward gives them."""
    weight, trained, values = trained_rows(head)
    logits = F.linear(hidden, autocast_copy(weight))
    if trained is not None:
        logits = logits.index_copy(1, trained, F.linear(hidden, values).to(logits.dtype))
    bias = head_bias(head, torch.arange(weight.shape[0], device=hidden.device))
    return logits if bias is None else logits + bias.to(logits.dtype)


def input_embeddings(model: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor | None:
    """The input embedding of ``input_ids`` as the model's forward would look them up (None where the
    embedding is not a plain lookup, e.g. one that scales its output: the model then looks up itself)."""
    embedding = model.get_input_embeddings()
    weight, _, _ = trained_rows(embedding)
    base = getattr(getattr(embedding, "token_adapter", embedding), "base_layer", embedding)
    if type(base) is not torch.nn.Embedding:
        return None
    return rows_of(embedding, input_ids).to(weight.dtype)


def _forward_unless_empty(self: torch.nn.Module, hidden: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
    if hidden.numel() == 0:
        weight, _, trained = trained_rows(self)
        empty = hidden.new_zeros((*hidden.shape[:-1], weight.shape[0]))
        # the trained rows stay in the forward's graph, where DDP looks for the parameters a step uses
        return empty if trained is None else empty + trained.sum() * 0
    return type(self).forward(self, hidden, *args, **kwargs)


def skip_head_without_positions(model: torch.nn.Module) -> None:
    """The model's output head answers a call on no positions (``logits_to_keep`` empty, as the loss and
    the code-space beam search ask for) with empty logits at once.

    Why: the causal LM's forward calls its head even then, and peft's trainable-token head builds
    its merged 49k-row matrix and autocast its bf16 copy before multiplying by nothing: about a
    tenth of a CPU training step."""
    head = model.get_output_embeddings()
    head.forward = types.MethodType(_forward_unless_empty, head)


def head_bias(head: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor | None:
    """What the head's forward adds to the logits of ``ids``: its bias and the code prior's hook."""
    total = None
    for name in ("bias", PRIOR):
        value = getattr(head, name, None)
        if isinstance(value, torch.Tensor):
            total = value[ids] if total is None else total + value[ids]
    return total


def all_code_logits(head: torch.nn.Module, hidden: torch.Tensor, vocab: CodeVocabulary) -> torch.Tensor:
    """[..., levels * K]: the logits of every level's codes after ``hidden``, level-major, as the head
    would give them at those rows (bias and code prior included): 1k rows of the head, not 50k."""
    ids = torch.as_tensor(vocab.token_ids.ravel(), device=hidden.device)
    logits = F.linear(hidden, rows_of(head, ids))
    bias = head_bias(head, ids)
    return logits if bias is None else logits + bias.to(logits.dtype)


def code_logits(head: torch.nn.Module, hidden: torch.Tensor, vocab: CodeVocabulary,
                levels: torch.Tensor) -> torch.Tensor:
    """[N, codebook_size]: the logits of level ``levels[n]``'s codes after ``hidden[n]``."""
    logits = all_code_logits(head, hidden, vocab)
    rows = torch.arange(len(levels), device=hidden.device)
    return logits.view(len(levels), vocab.levels, vocab.codebook_size)[rows, levels]


def code_head(model: torch.nn.Module, vocab: CodeVocabulary) -> CodeHead:
    """The beam search's code head (:mod:`alignrec.decode.scoring`) for ``model``: its head's rows are
    read at each call, so a model still training decodes as it is now."""
    head = model.get_output_embeddings()
    return lambda hidden: all_code_logits(head, hidden, vocab)
