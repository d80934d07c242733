"""``code_usage.png``: items per code at each level, codes sorted by use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alignrec.io import atomic_open

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def code_usage_figure(codes: np.ndarray, codebook_size: int, title: str) -> Figure:
    """One bar chart per level (also drawn by ``alignrec report``); no pyplot state, safe off the main thread."""
    from matplotlib.figure import Figure

    levels = codes.shape[1]
    fig = Figure(figsize=(3.2 * levels, 2.8))
    axes = fig.subplots(1, levels, sharey=True, squeeze=False)
    for level, ax in enumerate(axes[0]):
        counts = np.sort(np.bincount(codes[:, level], minlength=codebook_size))[::-1]
        used = int((counts > 0).sum())
        ax.bar(np.arange(codebook_size), counts, width=1.0)
        ax.set(title=f"level {level}: {used}/{codebook_size} used", xlabel="code (by use)")
    axes[0][0].set_ylabel("items")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_code_usage(codes: np.ndarray, codebook_size: int, path: Path, title: str) -> None:
    with atomic_open(path, "wb") as handle:
        code_usage_figure(codes, codebook_size, title).savefig(handle, format="png", dpi=100)
