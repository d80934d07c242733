"""Examples -> token ids and labels, packed into fixed-width rows.

Short examples are packed side by side into rows of ``max_tokens``; each example's
position ids restart at 0, and with no attention mask transformers reads those
restarts as sequence boundaries (block-diagonal causal attention), so packed
examples never see each other. Labels are -100 outside target pieces; a text target
ends with EOS so generation knows where to stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from alignrec.llm.tasks.example import Example

IGNORE = -100


@dataclass
class Encoded:
    input_ids: np.ndarray
    labels: np.ndarray
    task: int


class ExampleEncoder:
    """Tokenizes pieces one by one (text through the LLM tokenizer, items as code ids)."""

    def __init__(
        self,
        encode_texts: Callable[[list[str]], list[list[int]]],
        item_token_ids: np.ndarray,
        eos_id: int,
        task_names: Sequence[str],
    ) -> None:
        self.encode_texts = encode_texts
        self.item_token_ids = np.asarray(item_token_ids, dtype=np.int64)
        self.eos_id = eos_id
        self.task_index = {name: i for i, name in enumerate(task_names)}
        self._cache: dict[str, list[int]] = {}

    def _warm(self, texts: set[str]) -> None:
        missing = sorted(t for t in texts if t not in self._cache)
        for start in range(0, len(missing), 4096):
            batch = missing[start : start + 4096]
            for value, ids in zip(batch, self.encode_texts(batch), strict=True):
                self._cache[value] = list(ids)

    def encode(self, examples: Sequence[Example]) -> list[Encoded]:
        self._warm({p.text for e in examples for p in e.pieces if not p.is_item})
        return [self._encode_one(e) for e in examples]

    def _encode_one(self, example: Example) -> Encoded:
        ids: list[int] = []
        labels: list[int] = []
        for piece in example.pieces:
            tokens = self.item_token_ids[piece.item].tolist() if piece.is_item else self._cache[piece.text]
            ids.extend(tokens)
            labels.extend(tokens if piece.target else [IGNORE] * len(tokens))
        last = example.pieces[-1] if example.pieces else None
        if last is not None and last.target and not last.is_item:
            ids.append(self.eos_id)
            labels.append(self.eos_id)
        return Encoded(np.asarray(ids, np.int64), np.asarray(labels, np.int64), self.task_index[example.task])

    def prompt_ids(self, example: Example) -> list[int]:
        """A prompt (no targets) as token ids, exactly as training saw such context."""
        self._warm({p.text for p in example.pieces if not p.is_item})
        return self._encode_one(example).input_ids.tolist()


@dataclass
class PackedRow:
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    tasks: np.ndarray
    """Task index of each label (-1 where the label is ignored)."""


def pack(encoded: Sequence[Encoded], max_tokens: int) -> list[PackedRow]:
    """Greedy packing in the given order; an example longer than a row keeps its end."""
    rows: list[PackedRow] = []
    parts: list[Encoded] = []
    used = 0

    def flush() -> None:
        if parts:
            rows.append(PackedRow(
                np.concatenate([p.input_ids for p in parts]),
                np.concatenate([p.labels for p in parts]),
                np.concatenate([np.arange(len(p.input_ids)) for p in parts]),
                np.concatenate([np.where(p.labels == IGNORE, -1, p.task) for p in parts]),
            ))
            parts.clear()

    for example in encoded:
        if len(example.input_ids) > max_tokens:
            example = Encoded(example.input_ids[-max_tokens:], example.labels[-max_tokens:], example.task)
        if used + len(example.input_ids) > max_tokens:
            flush()
            used = 0
        parts.append(example)
        used += len(example.input_ids)
    flush()
    return rows


class PackedDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[PackedRow]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> PackedRow:
        return self.rows[index]


def collate(rows: list[PackedRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest row; padding is its own 'sequence' (positions from 0), never labelled.

    ``num_tokens`` and ``num_examples`` count the real (unpadded) content, for throughput logs."""
    width = max(len(r.input_ids) for r in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "labels": torch.full((len(rows), width), IGNORE, dtype=torch.long),
        "position_ids": torch.zeros((len(rows), width), dtype=torch.long),
        "tasks": torch.full((len(rows), width), -1, dtype=torch.long),
    }
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        batch["input_ids"][i, :n] = torch.from_numpy(row.input_ids)
        batch["labels"][i, :n] = torch.from_numpy(row.labels)
        batch["position_ids"][i, :n] = torch.from_numpy(row.position_ids)
        batch["position_ids"][i, n:] = torch.arange(width - n)
        batch["tasks"][i, :n] = torch.from_numpy(row.tasks)
    batch["num_tokens"] = torch.tensor(sum(len(r.input_ids) for r in rows))
    batch["num_examples"] = torch.tensor(sum(int((r.position_ids == 0).sum()) for r in rows))
    return batch
