"""What every residual quantizer shares: the interface and greedy residual assignment.

A residual quantizer maps an item vector to a latent ``z`` (the identity for
RQ-KMeans, an MLP encoder for RQ-VAE) and then, level by level, picks the
nearest codeword to what is left: ``c_l = argmin_k ||r_l - C_l[k]||``,
``r_{l+1} = r_l - C_l[c_l]`` with ``r_1 = z``. Early levels carry the coarse
meaning, later ones refine it, which is what a prefix tree over codes needs.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Quantizer(Protocol):
    """A trained residual quantizer."""

    name: str
    codebooks: list[np.ndarray]
    """One [codebook_size, latent_dim] float32 array per level."""

    def fit(self, x: np.ndarray) -> dict[str, Any]:
        """Learn the codebooks (and encoder) from item vectors; return a training log."""
        ...

    def latent(self, x: np.ndarray) -> np.ndarray:
        """Item vectors -> the latent the codebooks quantise."""
        ...

    def settings(self) -> dict[str, Any]:
        """Everything needed to rebuild it, for the artifact."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays besides the codebooks (e.g. encoder weights)."""
        ...


def nearest(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of each row's nearest codeword (squared Euclidean; ties -> lowest index)."""
    d = (x * x).sum(1, keepdims=True) - 2.0 * x @ codebook.T + (codebook * codebook).sum(1)[None, :]
    return d.argmin(axis=1)


def residual_assign(z: np.ndarray, codebooks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Codes [N, L] by greedy residual assignment, and the residual entering the last level."""
    codes = np.zeros((len(z), len(codebooks)), dtype=np.int64)
    residual = z.astype(np.float32).copy()
    last = residual
    for level, codebook in enumerate(codebooks):
        last = residual.copy()
        codes[:, level] = nearest(residual, codebook)
        residual = residual - codebook[codes[:, level]]
    return codes, last


def reconstruct(codes: np.ndarray, codebooks: list[np.ndarray]) -> np.ndarray:
    """Sum of each item's codewords: its point in code space."""
    return sum(codebook[codes[:, level]] for level, codebook in enumerate(codebooks))
