"""The training loss: cross-entropy at every labelled position, a code target over its own level's codes.

Why the level's codes (``llm.code_softmax: level``): at a code position decoding only ever chooses
among that level's codes (the trie allows no other token there), so that is the distribution it
scores with, and training the same distribution needs the output head's 256 code rows of the
level, not the whole vocabulary. The vocabulary's logits at every labelled position, their fp32
copy, softmax and backward were about half of a CPU training step (BENCHMARKS.md, "LLM training
and decoding at the CPU's limit"). Text targets (item -> text, preferences) keep the full
vocabulary. ``vocabulary`` is the earlier objective: every target over the whole vocabulary, as
decoding then normalises too.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from alignrec.llm.attention import SegmentLayout
from alignrec.llm.encoding import IGNORE
from alignrec.llm.prior import PRIOR
from alignrec.llm.vocab import CodeVocabulary

Softmax = Literal["level", "vocabulary"]


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


def vocabulary_logits(head: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """[N, vocab]: the head's logits over the whole vocabulary, as its forward gives them."""
    weight, trained, values = trained_rows(head)
    logits = F.linear(hidden, weight)
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


def head_bias(head: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor | None:
    """What the head's forward adds to the logits of ``ids``: its bias and the code prior's hook."""
    total = None
    for name in ("bias", PRIOR):
        value = getattr(head, name, None)
        if isinstance(value, torch.Tensor):
            total = value[ids] if total is None else total + value[ids]
    return total


def code_logits(head: torch.nn.Module, hidden: torch.Tensor, vocab: CodeVocabulary,
                levels: torch.Tensor) -> torch.Tensor:
    """[N, codebook_size]: the logits of level ``levels[n]``'s codes after ``hidden[n]``, as the head
    would give them (bias and code prior included)."""
    ids = torch.as_tensor(vocab.token_ids.ravel(), device=hidden.device)
    logits = F.linear(hidden, rows_of(head, ids))  # [N, levels * K]: 1k columns, not 50k
    bias = head_bias(head, ids)
    if bias is not None:
        logits = logits + bias.to(logits.dtype)
    rows = torch.arange(len(levels), device=hidden.device)
    return logits.view(len(levels), vocab.levels, vocab.codebook_size)[rows, levels]


def widened(logits: torch.Tensor) -> torch.Tensor:
    """The logits in at least float32 for the softmax (bf16 ones widened, float64 ones kept)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def per_task_sums(ce: torch.Tensor, tasks: torch.Tensor) -> dict[int, tuple[float, int]]:
    """Each task's (summed loss, labelled tokens), for the log."""
    sums = {}
    for task in tasks.unique().tolist():
        if task >= 0:
            chosen = tasks == task
            sums[task] = (float(ce[chosen].detach().sum()), int(chosen.sum()))
    return sums


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (its head is only read, never called through it)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def training_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], vocab: CodeVocabulary, softmax: Softmax = "level",
    segments: bool = True,
) -> tuple[torch.Tensor, dict[int, tuple[float, int]]]:
    """The summed cross-entropy of a packed batch's labels, and per task (sum, count).

    ``segments``: attention computed example by example group (:mod:`alignrec.llm.attention`, the
    model must use its implementation), not over whole rows under a mask; the same values."""
    extra = {"segments": SegmentLayout.from_position_ids(batch["position_ids"])} if segments else {}
    next_labels, next_tasks = batch["labels"][:, 1:], batch["tasks"][:, 1:]
    if softmax == "vocabulary":
        keep = (next_labels != IGNORE).any(0).nonzero().squeeze(1)  # logits only where some row has a label
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                       logits_to_keep=keep, **extra).logits
        labels, tasks = next_labels[:, keep].flatten(), next_tasks[:, keep].flatten()
        ce = F.cross_entropy(widened(logits.flatten(0, 1)), labels, ignore_index=IGNORE, reduction="none")
        return ce.sum(), per_task_sums(ce, tasks)
    # The model's own forward (through peft and DDP wrappers), with no logits: its last hidden state is
    # the final norm's output, what the head reads.
    inner = unwrapped(model)
    nothing = torch.empty(0, dtype=torch.long, device=batch["input_ids"].device)
    embedded = input_embeddings(inner, batch["input_ids"])
    inputs = {"input_ids": batch["input_ids"]} if embedded is None else {"inputs_embeds": embedded}
    hidden = model(**inputs, position_ids=batch["position_ids"], use_cache=False, logits_to_keep=nothing,
                   output_hidden_states=True, **extra).hidden_states[-1][:, :-1]
    labelled = next_labels != IGNORE
    labels, tasks, states = next_labels[labelled], next_tasks[labelled], hidden[labelled]
    head = inner.get_output_embeddings()
    is_code = labels >= vocab.base_vocab
    parts, part_tasks = [], []
    if bool(is_code.any()):
        offset = labels[is_code] - vocab.base_vocab
        level, code = offset // vocab.codebook_size, offset % vocab.codebook_size
        logits = code_logits(head, states[is_code], vocab, level)
        parts.append(F.cross_entropy(widened(logits), code, reduction="none"))
        part_tasks.append(tasks[is_code])
    if bool((~is_code).any()):
        logits = vocabulary_logits(head, states[~is_code])
        parts.append(F.cross_entropy(widened(logits), labels[~is_code], reduction="none"))
        part_tasks.append(tasks[~is_code])
    if not parts:
        return hidden.sum() * 0.0, {}
    ce = torch.cat(parts)
    return ce.sum(), per_task_sums(ce, torch.cat(part_tasks))
