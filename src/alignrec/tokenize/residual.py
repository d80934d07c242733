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

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors -> codes [N, L] and the residual entering the last level."""
        ...

    def settings(self) -> dict[str, Any]:
        """Everything needed to rebuild it, for the artifact."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays besides the codebooks (e.g. encoder weights)."""
        ...


def sq_distances(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    return (x * x).sum(1, keepdims=True) - 2.0 * x @ codebook.T + (codebook * codebook).sum(1)[None, :]


def nearest(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of each row's nearest codeword (squared Euclidean; ties -> lowest index)."""
    return sq_distances(x, codebook).argmin(axis=1)


def balanced_assign(x: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codeword under a capacity of ceil(N / K) rows per codeword.

    In rounds: every unplaced row proposes to its nearest codeword that still has
    room; each codeword takes the closest proposers up to its room (ties by row
    index). Vectorised per round; a round fills a codeword or places all its proposers.
    """
    d = sq_distances(x, codebook)
    n, k = d.shape
    room = np.full(k, -(-n // k))
    labels = np.full(n, -1, dtype=np.int64)
    pending = np.arange(n)
    while len(pending):
        options = np.where(room[None, :] > 0, d[pending], np.inf)
        choice = options.argmin(axis=1)
        dist = options[np.arange(len(pending)), choice]
        order = np.lexsort((pending, dist, choice))
        chosen = choice[order]
        starts = np.r_[0, np.flatnonzero(np.diff(chosen)) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        accept = rank < room[chosen]
        labels[pending[order[accept]]] = chosen[accept]
        room -= np.bincount(chosen[accept], minlength=k)
        pending = pending[order[~accept]]
    return labels


def residual_assign(
    z: np.ndarray, codebooks: list[np.ndarray], balanced: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Codes [N, L] by residual assignment (nearest, or balanced per level), and the
    residual entering the last level."""
    codes = np.zeros((len(z), len(codebooks)), dtype=np.int64)
    residual = z.astype(np.float64)  # float64: near-ties must not depend on BLAS threading
    last = residual
    for level, codebook in enumerate(codebooks):
        last = residual
        book = codebook.astype(np.float64)
        codes[:, level] = balanced_assign(residual, book) if balanced else nearest(residual, book)
        residual = residual - codebook[codes[:, level]].astype(np.float64)
    return codes, last


def reconstruct(codes: np.ndarray, codebooks: list[np.ndarray]) -> np.ndarray:
    """Sum of each item's codewords: its point in code space."""
    return sum(codebook[codes[:, level]] for level, codebook in enumerate(codebooks))
