"""SASRec (Kang & McAuley, 2018): causal self-attention over a user's item sequence.

Sequences are left-padded to ``max_len`` with item 0 (real items are shifted
by one), so the last position always holds the most recent item. Attention is
causal and ignores padding keys. Batches may be trimmed to their longest
sequence: positions count back from the end, so trimming changes nothing. Items are scored by a dot product with the
input item embeddings (shared, by default) or their own output embeddings (``tied=False``), or by cosine similarity over a temperature
(``similarity="cosine"``, as in the SASRec baseline of Zhai et al.'s HSTU
code, which keeps item norms from encoding popularity alone); the trainer
chooses the loss.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alignrec.config import SASRecConfig, check_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split
from alignrec.errors import AlignrecError
from alignrec.io import atomic_path
from alignrec.recommender import top_k
from alignrec.rundir import ModelDir, RunDir

PAD = 0

CHECKPOINT = "checkpoint.pt"
"""Resumable training state: weights, optimizer, counters, log, and the config, seed, data and code."""
BEST = "best_model.pt"
"""The weights that are evaluated and served (best on validation, or the final fit's last)."""
EMBEDDINGS = "item_embeddings.npz"
"""One row per item with its original id: the tokenizer's collaborative input."""


def left_pad(sequences: list[np.ndarray], max_len: int, trim: bool = False) -> torch.Tensor:
    """Last ``max_len`` items of each sequence, shifted by one, left-padded with PAD.

    ``trim``: pad only to the longest sequence in the batch (less work, same result).
    """
    width = min(max_len, max((len(s) for s in sequences), default=1)) if trim else max_len
    batch = np.zeros((len(sequences), max(width, 1)), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = np.asarray(sequence[max(0, len(sequence) - batch.shape[1]) :], dtype=np.int64) + 1
        if len(tail):
            batch[row, -len(tail) :] = tail
    return torch.from_numpy(batch)


class CausalBlock(nn.Module):
    """Pre-norm transformer block; attention through ``scaled_dot_product_attention``.

    ``attention_dropout`` drops attention weights inside SDPA, as Kang & McAuley's
    code does (off by default; docs/benchmarks-history.md measures it on ML-1M).

    ``relative_span > 0`` adds a learned bias per head and per distance back in
    the sequence (0 = itself, capped at ``relative_span - 1``) to the attention
    logits, as HSTU does (Zhai et al., 2024): how much the item ``d`` steps back
    matters is learned directly, not only through the absolute positions.
    """

    def __init__(self, hidden: int, heads: int, ffn_mult: int, dropout: float, relative_span: int = 0,
                 attention_dropout: float = 0.0) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        self.heads = heads
        self.attention_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden * ffn_mult), nn.GELU(), nn.Linear(hidden * ffn_mult, hidden)
        )
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = attention_dropout
        self.relative_bias = nn.Parameter(torch.zeros(heads, relative_span)) if relative_span else None

    def attention_mask(self, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` [batch, 1, L, L] as SDPA's mask: boolean, or additive with the relative bias."""
        if self.relative_bias is None:
            return allowed
        steps = torch.arange(allowed.shape[-1], device=allowed.device)
        distance = (steps[:, None] - steps[None, :]).clamp(0, self.relative_bias.shape[1] - 1)
        return self.relative_bias[:, distance].unsqueeze(0).masked_fill(~allowed, float("-inf"))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = (
            self.qkv(self.attention_norm(x))
            .view(batch, length, 3, self.heads, hidden // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.attention_mask(allowed),
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = x + self.dropout(self.attention_out(attended))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class SASRec(nn.Module):
    """Built from its config section, which declares every setting and its default once."""

    def __init__(self, num_items: int, config: SASRecConfig) -> None:
        super().__init__()
        check_config(config, "sasrec")
        hidden, max_len = config.hidden, config.max_len
        self.cosine = config.similarity == "cosine"
        self.temperature = config.temperature if self.cosine else 1.0
        self.num_items = num_items
        self.hidden = hidden
        self.max_len = max_len
        self.init_std = config.init_std
        self.item_embedding = nn.Embedding(num_items + 1, hidden, padding_idx=PAD)
        # Untied: what an item says about the next one (input) and when it is chosen (output) may differ.
        self.output_embedding = None if config.tied else nn.Embedding(num_items, hidden)
        self.position_embedding = nn.Embedding(max_len, hidden)
        self.dropout = nn.Dropout(config.dropout)
        relative_span = max_len if config.relative_bias else 0
        self.blocks = nn.ModuleList(
            CausalBlock(hidden, config.heads, config.ffn_mult, config.dropout, relative_span, config.attention_dropout)
            for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings N(0, hidden^-1/2) and PyTorch's default linear layers, or (``init_std``)
        every weight N(0, init_std) and zero biases, as BERT, GPT-2 and RecBole start.

        The small start matters on ML-1M: with the default one, training sits on a
        plateau for three epochs before the loss falls (docs/benchmarks-history.md).
        """
        if self.init_std is None:
            for embedding in self._embeddings():
                nn.init.normal_(embedding.weight, std=self.hidden**-0.5)
        else:
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=self.init_std)
                    nn.init.zeros_(module.bias)
            for embedding in self._embeddings():
                nn.init.normal_(embedding.weight, std=self.init_std)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    def _embeddings(self) -> list[nn.Embedding]:
        return [e for e in (self.item_embedding, self.position_embedding, self.output_embedding) if e is not None]

    @staticmethod
    def attention_allowed(padded: torch.Tensor) -> torch.Tensor:
        """[batch, 1, L, L], True = may attend: earlier real items, and always itself."""
        length = padded.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=padded.device).tril()
        real_keys = (padded != PAD).unsqueeze(1)
        itself = torch.eye(length, dtype=torch.bool, device=padded.device)
        return ((causal & real_keys) | itself).unsqueeze(1)

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        """[batch, length <= max_len] item ids (PAD = 0, left-padded) -> [batch, length, hidden]."""
        length = padded.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len, device=padded.device)
        x = self.item_embedding(padded) * math.sqrt(self.hidden) + self.position_embedding(positions)
        x = self.dropout(x)
        allowed = self.attention_allowed(padded)
        for block in self.blocks:
            x = block(x, allowed)
        x = self.final_norm(x)
        if self.cosine:
            x = F.normalize(x, dim=-1)
        return x * (padded != PAD).unsqueeze(-1)

    def item_vectors(self) -> torch.Tensor:
        """[num_items, hidden]: row ``i`` scores dataset item ``i`` (unit length under cosine)."""
        items = self.item_embedding.weight[1:] if self.output_embedding is None else self.output_embedding.weight
        return F.normalize(items, dim=-1) if self.cosine else items

    def logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Similarity of states [..., hidden] to item vectors [n, hidden], temperature-scaled.

        The temperature divides the states, not the logits: ``hidden`` numbers per row
        instead of ``n`` (a pass over the largest tensor of a training step saved).
        """
        if self.temperature != 1.0:
            states = states / self.temperature
        return states @ items.T

    def score_last(self, padded: torch.Tensor) -> torch.Tensor:
        """Scores of all items as the next item after each sequence: [batch, num_items]."""
        return self.logits(self(padded)[:, -1], self.item_vectors())


class SASRecRecommender:
    """A trained SASRec under the recommender contract: next-item scores after the whole history."""

    name = "sasrec"
    batch_size = 256

    def __init__(self, model: SASRec) -> None:
        self.model = model.eval()
        self.device = model.item_embedding.weight.device

    def recommend(
        self, histories: list[np.ndarray], k: int, exclude_history: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            scores = self.model.score_last(left_pad(histories, self.model.max_len, trim=True).to(self.device)).cpu()
        return top_k(scores, histories, k, exclude_history)


def model_files(run: RunDir) -> list[Path]:
    """The file that defines a trained SASRec (its weights)."""
    return [run.model("sasrec").file(BEST)]


def load(folder: ModelDir, dataset: SequenceDataset) -> SASRec:
    """The evaluated weights in ``folder``, checked against the data they were trained on."""
    best, checkpoint = folder.file(BEST), folder.file(CHECKPOINT)
    for path in (best, checkpoint):
        if not path.is_file():
            raise AlignrecError(f"{path}: missing; train SASRec in this run first (`alignrec run`)")
    # checkpoint.pt holds the architecture and the data fingerprint the weights were trained on.
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if saved.get("data") != dataset.fingerprint():
        raise AlignrecError(f"{checkpoint}: trained on other data than this run's; use the run it was trained in")
    model = SASRec(dataset.num_items, SASRecConfig(**saved["config"]))
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True))
    return model


EXPORT_FORMAT = "alignrec-sasrec/1"
"""The exported folder's format: ``model.safetensors``, ``config.json`` (this and the settings), ``items.json``."""


def export_model(run: RunDir, dataset: SequenceDataset, out: Path) -> list[Path]:
    """The run's SASRec as safetensors with its config and its items' original ids (row ``i + 1`` of
    the item embedding is ``items[i]``; row 0 is padding), loadable without alignrec's run folder."""
    from safetensors.torch import save_model

    from alignrec.config import to_dict
    from alignrec.io import write_json

    model = load(run.model("sasrec"), dataset)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_model(model, str(tmp))  # tied embeddings are stored once
    write_json(out / "config.json", {"format": EXPORT_FORMAT, "num_items": model.num_items, "pad": PAD,
                                     "input": "item ids shifted by one, left-padded with 0, the last max_len items",
                                     "sasrec": to_dict(saved_config(run.model("sasrec")))})
    write_json(out / "items.json", [str(item) for item in dataset.item_ids])
    return [out / "model.safetensors", out / "config.json", out / "items.json"]


def load_export(folder: Path) -> tuple[SASRec, list[str]]:
    """An exported SASRec (:func:`export_model`) and its items' original ids."""
    from safetensors.torch import load_model

    from alignrec.io import read_json

    config = read_json(folder / "config.json")
    if config.get("format") != EXPORT_FORMAT:
        raise AlignrecError(f"{folder / 'config.json'}: not an exported SASRec ({EXPORT_FORMAT})")
    model = SASRec(config["num_items"], SASRecConfig(**config["sasrec"]))
    load_model(model, str(folder / "model.safetensors"))
    return model.eval(), list(read_json(folder / "items.json"))


def saved_config(folder: ModelDir) -> SASRecConfig:
    """The architecture a trained SASRec was built with (its checkpoint records it)."""
    return SASRecConfig(**torch.load(folder.file(CHECKPOINT), map_location="cpu", weights_only=True)["config"])


def load_recommender(run: RunDir, dataset: SequenceDataset, horizon: Split | None = None) -> SASRecRecommender:
    """The catalog's loader: the same weights whatever the horizon (they never saw a test target)."""
    return SASRecRecommender(load(run.model("sasrec"), dataset))


def save_item_embeddings(model: SASRec, dataset: SequenceDataset, path: Path) -> None:
    """The tokenizer's collaborative input: one row per dataset item, with its original id."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            embeddings=model.item_vectors().detach().cpu().numpy().astype(np.float32),
            item_ids=np.asarray(dataset.item_ids, dtype=str),
        )
