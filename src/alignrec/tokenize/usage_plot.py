"""``code_usage.png``: items per code at each level, codes sorted by use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alignrec.io import atomic_open


def plot_code_usage(codes: np.ndarray, codebook_size: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = codes.shape[1]
    fig, axes = plt.subplots(1, levels, figsize=(3.2 * levels, 2.8), sharey=True, squeeze=False)
    for level, ax in enumerate(axes[0]):
        counts = np.sort(np.bincount(codes[:, level], minlength=codebook_size))[::-1]
        used = int((counts > 0).sum())
        ax.bar(np.arange(codebook_size), counts, width=1.0)
        ax.set(title=f"level {level}: {used}/{codebook_size} used", xlabel="code (by use)")
    axes[0][0].set_ylabel("items")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
