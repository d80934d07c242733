"""RQ-KMeans: k-means on the item vectors, then on what is left, level by level.

The default quantizer. No training loop to tune, deterministic for a seed, and
on catalogues of a few thousand to tens of thousands of items it reaches high
codebook utilisation at every level in seconds (scikit-learn's Lloyd k-means).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from alignrec.errors import AlignrecError

NAME = "rqkmeans"


def check_size(num_items: int, codebook_size: int) -> None:
    if num_items < codebook_size:
        raise AlignrecError(
            f"tokenize.codebook_size={codebook_size} is larger than the {num_items} items; "
            "set it to at most the number of items"
        )


def residual_kmeans(
    x: np.ndarray, levels: int, codebook_size: int, iters: int, seed: int
) -> tuple[list[np.ndarray], list[float]]:
    """Codebooks fitted level by level on the residual; and each level's fit time."""
    check_size(len(x), codebook_size)
    residual = x.astype(np.float64)
    codebooks, times = [], []
    for level in range(levels):
        started = time.perf_counter()
        kmeans = KMeans(codebook_size, n_init=1, max_iter=iters, random_state=seed + level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # duplicate points at deep levels
            labels = kmeans.fit_predict(residual)
        centers = kmeans.cluster_centers_
        codebooks.append(centers.astype(np.float32))
        residual = residual - centers[labels]
        times.append(time.perf_counter() - started)
    return codebooks, times


class RQKMeans:
    name = NAME

    def __init__(self, levels: int, codebook_size: int, iters: int, seed: int) -> None:
        self.levels, self.codebook_size, self.iters, self.seed = levels, codebook_size, iters, seed
        self.codebooks: list[np.ndarray] = []

    def fit(self, x: np.ndarray) -> dict[str, Any]:
        self.codebooks, times = residual_kmeans(x, self.levels, self.codebook_size, self.iters, self.seed)
        return {"level_fit_s": times}

    def latent(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)

    def settings(self) -> dict[str, Any]:
        return {
            "levels": self.levels, "codebook_size": self.codebook_size,
            "kmeans_iters": self.iters, "seed": self.seed, "kmeans": "scikit-learn lloyd, n_init=1",
        }

    def state(self) -> dict[str, np.ndarray]:
        return {}
