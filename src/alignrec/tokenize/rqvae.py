"""RQ-VAE (TIGER, LC-Rec): an MLP auto-encoder whose latent is residual-quantised.

Loss per batch, with encoder output ``z``, level residuals ``r_l`` (``r_1 = z``),
chosen codewords ``e_l`` and ``sg`` = stop-gradient::

    L = ||x - dec(z + sg(sum_l e_l - z))||^2                    reconstruction (straight-through)
      + sum_l ||sg(r_l) - e_l||^2 + beta * ||r_l - sg(e_l)||^2   codebook + commitment

Codebooks start from residual k-means on the untrained encoder's outputs (so
no code starts dead), and after every epoch each code no item chose is reset to
a random residual of its level (dead-code reset), which keeps utilisation up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from alignrec.config import RQVAEConfig
from alignrec.tokenize.residual import residual_assign
from alignrec.tokenize.rqkmeans import check_size, residual_kmeans

NAME = "rqvae"


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAEModel(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int], latent: int, levels: int, size: int) -> None:
        super().__init__()
        self.encoder = mlp([in_dim, *hidden, latent])
        self.decoder = mlp([latent, *reversed(hidden), in_dim])
        self.codebooks = nn.Parameter(torch.zeros(levels, size, latent))

    def quantize(self, z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Quantised latent, codes [B, L], codebook+commitment loss, per-level residuals."""
        residual, total, loss = z, torch.zeros_like(z), z.new_zeros(())
        codes, residuals = [], []
        for codebook in self.codebooks:
            residuals.append(residual.detach())
            index = torch.cdist(residual, codebook).argmin(dim=1)
            chosen = codebook[index]
            loss = loss + F.mse_loss(chosen, residual.detach()) + beta * F.mse_loss(residual, chosen.detach())
            total = total + chosen
            residual = residual - chosen.detach()
            codes.append(index)
        return total, torch.stack(codes, dim=1), loss, residuals


class RQVAE:
    name = NAME

    def __init__(self, levels: int, codebook_size: int, config: RQVAEConfig, kmeans_iters: int, seed: int) -> None:
        self.levels, self.codebook_size, self.config = levels, codebook_size, config
        self.kmeans_iters, self.seed = kmeans_iters, seed
        self.model: RQVAEModel | None = None
        self.codebooks: list[np.ndarray] = []

    def build(self, in_dim: int) -> RQVAEModel:
        torch.manual_seed(self.seed)
        self.model = RQVAEModel(in_dim, self.config.hidden, self.config.latent_dim, self.levels, self.codebook_size)
        return self.model

    def fit(self, x: np.ndarray) -> dict[str, Any]:
        check_size(len(x), self.codebook_size)
        cfg = self.config
        model = self.build(x.shape[1])
        data = torch.from_numpy(x.astype(np.float32))
        with torch.no_grad():
            init, _ = residual_kmeans(model.encoder(data).numpy(), self.levels, self.codebook_size,
                                      self.kmeans_iters, self.seed)
            model.codebooks.copy_(torch.from_numpy(np.stack(init)))
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        generator = torch.Generator().manual_seed(self.seed)
        log: list[dict[str, float]] = []
        started = time.perf_counter()
        for epoch in tqdm(range(cfg.epochs), desc="rq-vae", unit="epoch"):
            model.train()
            order = torch.randperm(len(data), generator=generator)
            recon_sum = quant_sum = 0.0
            for start in range(0, len(data), cfg.batch_size):
                batch = data[order[start : start + cfg.batch_size]]
                z = model.encoder(batch)
                zq, _, quant_loss, _ = model.quantize(z, cfg.beta)
                recon = model.decoder(z + (zq - z).detach())
                recon_loss = F.mse_loss(recon, batch)
                optimizer.zero_grad()
                (recon_loss + quant_loss).backward()
                optimizer.step()
                recon_sum += recon_loss.item() * len(batch)
                quant_sum += quant_loss.item() * len(batch)
            resets = self._reset_dead_codes(data, generator) if cfg.dead_code_reset else 0
            log.append({"epoch": epoch + 1, "recon": recon_sum / len(data),
                        "quant": quant_sum / len(data), "dead_codes_reset": resets})
        self.codebooks = [c.detach().numpy().copy() for c in model.codebooks]
        return {"train_s": time.perf_counter() - started, "first": log[0] if log else {},
                "last": log[-1] if log else {},
                "dead_codes_reset_total": int(sum(row["dead_codes_reset"] for row in log))}

    @torch.no_grad()
    def _reset_dead_codes(self, data: torch.Tensor, generator: torch.Generator) -> int:
        """Move every code no item chose this pass onto a random residual of its level."""
        assert self.model is not None
        self.model.eval()
        _, codes, _, residuals = self.model.quantize(self.model.encoder(data), self.config.beta)
        resets = 0
        for level in range(self.levels):
            used = torch.bincount(codes[:, level], minlength=self.codebook_size) > 0
            dead = torch.nonzero(~used).flatten()
            if len(dead):
                rows = torch.randint(len(data), (len(dead),), generator=generator)
                self.model.codebooks[level, dead] = residuals[level][rows]
                resets += len(dead)
        return resets

    @torch.no_grad()
    def latent(self, x: np.ndarray) -> np.ndarray:
        assert self.model is not None, "fit or load the RQ-VAE first"
        self.model.eval()
        return self.model.encoder(torch.from_numpy(x.astype(np.float32))).numpy()

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return residual_assign(self.latent(x), self.codebooks)

    def settings(self) -> dict[str, Any]:
        return {
            "levels": self.levels, "codebook_size": self.codebook_size, "seed": self.seed,
            "kmeans_init_iters": self.kmeans_iters, "in_dim": self._in_dim(),
            "latent_dim": self.config.latent_dim, "hidden": list(self.config.hidden),
            "epochs": self.config.epochs, "batch_size": self.config.batch_size, "lr": self.config.lr,
            "beta": self.config.beta, "dead_code_reset": self.config.dead_code_reset,
        }

    def _in_dim(self) -> int:
        assert self.model is not None
        first = self.model.encoder[0]
        assert isinstance(first, nn.Linear)
        return first.in_features

    def state(self) -> dict[str, np.ndarray]:
        assert self.model is not None
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_state(self, in_dim: int, state: dict[str, np.ndarray]) -> None:
        model = self.build(in_dim)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.codebooks = [c.detach().numpy().copy() for c in model.codebooks]
