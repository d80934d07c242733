"""Give every code token an initial embedding in the LLM's input space.

Each level ``l`` has a learned affine projection from the quantizer's code
space into the LLM's input-embedding space; the token for (level ``l``, code
``k``) starts as ``T[l,k] = mu_E + n_E * (W_l C_l[k] / r_l + b_l)``, where
``r_l`` is the level's RMS codeword norm and ``mu_E``, ``n_E`` the LLM
vocabulary's mean vector and mean row norm (fixed constants, so the learned
``W_l``, ``b_l`` work at unit scale whatever the LLM's scale is). An item's vector
is the sum of its tokens, ``v_i = sum_l T[l, c_il]``.

With item text, the projection is trained to make ``v_i`` point where the LLM
already represents the item: ``t_i`` is the LLM's own mean input embedding of
the tokens of the item's title, and the loss is a symmetric InfoNCE over a
batch ``B`` with temperature ``tau`` and similarity ``s`` = cosine after removing
each side's mean (over the batch for ``v``, over all items for ``t``: every
title's mean embedding shares the vocabulary's common direction, which would
otherwise make all titles look alike)::

    L_nce = 1/2 * mean_i [ -log softmax_j( s(v_i, t_j) / tau )_i  -log softmax_j( s(t_i, v_j) / tau )_i ]

Because cosine ignores scale, and for ID-only data (no titles) as the whole
objective, an anchor matches the token embeddings' distribution to that of the
LLM vocabulary ``E`` (per-dimension mean and spread, and mean row norm)::

    L_anchor = ||mean(T) - mean(E)||^2 / ||std(E)||^2 + ||std(T) - std(E)||^2 / ||std(E)||^2
             + (mean ||T_r|| - mean ||E_r||)^2 / (mean ||E_r||)^2

    L = L_nce + anchor_weight * L_anchor        (ID-only: L = L_anchor)

so new tokens neither dwarf nor vanish next to the words the LLM knows.
A seeded share of titled items (``holdout``) is left out of the InfoNCE; title
retrieval (does an item's token sum find its own title among all titles?) is
reported for trained and held-out items, before and after training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from alignrec.backbone import Backbone
from alignrec.config import AlignConfig


@dataclass
class Alignment:
    projection: dict[str, np.ndarray]
    """weight [L, code_dim, llm_dim], bias [L, llm_dim], input_scale [L] (r_l),
    output_scale [] (n_E), output_shift [llm_dim] (mu_E)."""
    token_embeddings: np.ndarray
    """[levels * codebook_size, llm_dim]: row ``l * K + k`` is token (l, k)."""
    log: dict[str, Any]


def title_targets(backbone: Backbone, titles: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The LLM's mean input embedding of each title's tokens; and which titles are non-empty."""
    ids = backbone.encode(titles)
    target = torch.zeros(len(titles), backbone.embeddings.shape[1])
    has = torch.zeros(len(titles), dtype=torch.bool)
    for i, row in enumerate(ids):
        if row:
            target[i] = backbone.embeddings[torch.tensor(row)].mean(0)
            has[i] = True
    return target, has


def anchor_loss(tokens: torch.Tensor, stats: dict[str, torch.Tensor]) -> torch.Tensor:
    spread = stats["std"].pow(2).sum()
    return (
        (tokens.mean(0) - stats["mean"]).pow(2).sum() / spread
        + (tokens.std(0) - stats["std"]).pow(2).sum() / spread
        + (tokens.norm(dim=1).mean() - stats["norm"]).pow(2) / stats["norm"].pow(2)
    )


def info_nce(items: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE; ``targets`` must already be centred."""
    items = items - items.mean(0, keepdim=True)
    logits = F.normalize(items, dim=1) @ F.normalize(targets, dim=1).T / temperature
    labels = torch.arange(len(items))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


@torch.no_grad()
def retrieval_accuracy(items: torch.Tensor, targets: torch.Tensor, k: int = 10) -> dict[str, float]:
    """Share of items whose own title is the nearest (top-1) / among the k nearest targets."""
    a = F.normalize(items - items.mean(0, keepdim=True), dim=1)
    b = F.normalize(targets, dim=1)
    hits1 = hitsk = 0
    for start in range(0, len(a), 2048):
        sims = a[start : start + 2048] @ b.T
        rank = (sims > sims.gather(1, torch.arange(start, start + len(sims))[:, None])).sum(1)
        hits1 += int((rank < 1).sum())
        hitsk += int((rank < k).sum())
    return {"top1": hits1 / len(a), f"top{k}": hitsk / len(a), "chance_top1": 1 / len(a)}


class Projection(torch.nn.Module):
    def __init__(self, codebooks: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        levels, _, code_dim = codebooks.shape
        llm_dim = shift.shape[0]
        self.weight = torch.nn.Parameter(torch.randn(levels, code_dim, llm_dim) / llm_dim**0.5)
        self.bias = torch.nn.Parameter(torch.zeros(levels, llm_dim))
        rms = codebooks.pow(2).sum(-1).mean(-1).sqrt().clamp(min=1e-12)
        self.register_buffer("input_scale", rms)
        self.register_buffer("output_shift", shift.clone())
        self.register_buffer("output_scale", scale.clone())

    def forward(self, codebooks: torch.Tensor) -> torch.Tensor:
        """[L, K, code_dim] -> [L, K, llm_dim]."""
        unit = codebooks / self.input_scale[:, None, None]
        projected = torch.einsum("lkd,ldh->lkh", unit, self.weight) + self.bias[:, None, :]
        return self.output_shift + self.output_scale * projected


def align_codes(
    codebooks: list[np.ndarray],
    codes: np.ndarray,
    backbone: Backbone,
    titles: list[str] | None,
    config: AlignConfig,
    seed: int,
) -> Alignment:
    """Train the projection; ``titles=None`` (ID-only) trains the anchor alone."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    books = torch.from_numpy(np.stack(codebooks).astype(np.float32))
    levels, size, _ = books.shape
    llm = backbone.embeddings
    stats = {"mean": llm.mean(0), "std": llm.std(0), "norm": llm.norm(dim=1).mean()}
    projection = Projection(books, stats["mean"], stats["norm"])
    optimizer = torch.optim.Adam(projection.parameters(), lr=config.lr)
    code_index = torch.from_numpy(codes) + torch.arange(levels)[None, :] * size  # rows of the flat table
    targets, pool, held = None, torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    if titles is not None:
        targets, has = title_targets(backbone, titles)
        titled = torch.nonzero(has).flatten()
        if len(titled):
            targets = targets - targets[titled].mean(0, keepdim=True)
        split = torch.randperm(len(titled), generator=torch.Generator().manual_seed(seed + 1))
        n_held = int(round(config.holdout * len(titled)))
        held, pool = titled[split[:n_held]].sort().values, titled[split[n_held:]].sort().values
    use_text = targets is not None and len(pool) >= 2

    def losses(batch: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = projection(books).reshape(levels * size, -1)
        anchor = anchor_loss(tokens, stats)
        if not use_text or batch is None:
            return anchor, anchor.new_zeros(())
        items = tokens[code_index[batch]].sum(1)
        return anchor, info_nce(items, targets[batch], config.temperature)

    def item_vectors(items: torch.Tensor) -> torch.Tensor:
        return projection(books).reshape(levels * size, -1)[code_index[items]].sum(1)

    def retrieval() -> dict[str, dict[str, float]]:
        with torch.no_grad():
            out = {"trained": retrieval_accuracy(item_vectors(pool), targets[pool])}
            if len(held) >= 2:
                out["held_out"] = retrieval_accuracy(item_vectors(held), targets[held])
        return out

    started = time.perf_counter()
    curve: list[dict[str, float]] = []
    before = retrieval() if use_text else None
    for step in tqdm(range(config.steps), desc="alignment", unit="step"):
        batch = None
        if use_text:
            take = torch.randperm(len(pool), generator=generator)[: config.batch_size]
            batch = pool[take]
        anchor, nce = losses(batch)
        loss = nce + config.anchor_weight * anchor if use_text else anchor
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, config.steps // 20) == 0 or step == config.steps - 1:
            curve.append({"step": step, "loss": loss.item(), "info_nce": nce.item(), "anchor": anchor.item()})
    with torch.no_grad():
        tokens = projection(books).reshape(levels * size, -1)
        final_anchor, final_nce = losses(pool[: config.batch_size] if use_text else None)
    log: dict[str, Any] = {
        "objective": "info_nce + anchor_weight * anchor" if use_text else "anchor (ID-only: no titles)",
        "settings": {"steps": config.steps, "lr": config.lr, "batch_size": config.batch_size,
                     "temperature": config.temperature, "anchor_weight": config.anchor_weight,
                     "holdout": config.holdout},
        "items_trained_on_title": int(len(pool)),
        "items_held_out": int(len(held)),
        "curve": curve,
        "final": {"info_nce": float(final_nce), "anchor": float(final_anchor)},
        "token_mean_norm": float(tokens.norm(dim=1).mean()),
        "llm_mean_norm": float(stats["norm"]),
        "train_s": time.perf_counter() - started,
    }
    if use_text:
        log["title_retrieval"] = {"before": before, "after": retrieval()}
    return Alignment(
        projection={k: v.detach().numpy().copy() for k, v in projection.state_dict().items()},
        token_embeddings=tokens.numpy().copy(),
        log=log,
    )
