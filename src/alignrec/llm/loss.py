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
from alignrec.llm.head import code_logits, input_embeddings, vocabulary_logits
from alignrec.llm.vocab import CodeVocabulary

Softmax = Literal["level", "vocabulary"]


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
