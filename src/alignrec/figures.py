"""The report's plots: plain numbers in, a matplotlib Figure out (no pyplot state, no files)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Curve = list[tuple[int, float]]


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, np.ndarray]:
    """A figure and its row of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(1, columns, squeeze=False)[0]


def png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def metrics_at_k(recall: dict[str, Curve], ndcg: dict[str, Curve]) -> Figure:
    """Recall@K and NDCG@K against K, one line per model."""
    fig, (left, right) = _figure(10, 3.6, 2)
    ks: set[int] = set()
    for ax, curves, name in ((left, recall, "Recall"), (right, ndcg, "NDCG")):
        for label, points in curves.items():
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
            ks.update(k for k, _ in points)
        ax.set(xlabel="K", ylabel=f"{name}@K", title=f"{name}@K (test, leave-one-out, full ranking)", xscale="log")
        ax.grid(alpha=0.3)
    for ax in (left, right):
        ax.set_xticks(sorted(ks), [str(k) for k in sorted(ks)])
        ax.minorticks_off()
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _value(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def log_curves(rows: list[dict[str, str]]) -> tuple[dict[str, Curve], Curve, Curve]:
    """From ``llm/train_log.csv`` rows: each task's loss, the total loss and validation Recall@10 by step."""
    def curve(column: str) -> Curve:
        return [(int(r["step"]), v) for r in rows if (v := _value(r.get(column))) is not None]

    tasks = [c[len("loss_"):] for c in (rows[0].keys() if rows else []) if c.startswith("loss_")]
    losses = {task: points for task in tasks if (points := curve(f"loss_{task}"))}
    return losses, curve("loss"), curve("valid_recall@10")


def training_curves(losses: dict[str, Curve], total: Curve, valid: Curve) -> Figure:
    """Each task's training loss against the step, and the validation Recall@10."""
    fig, (left, right) = _figure(10, 3.6, 2)
    for task, points in losses.items():
        left.plot(*zip(*points, strict=True), label=task)
    if total:
        left.plot(*zip(*total, strict=True), color="black", linestyle="--", linewidth=1, label="all (weighted)")
    left.set(xlabel="optimiser step", ylabel="token cross-entropy", title="training loss per task", yscale="log")
    left.legend(fontsize=7)
    if valid:
        right.plot(*zip(*valid, strict=True), marker="o")
    right.set(xlabel="optimiser step", ylabel="Recall@10", title="validation Recall@10 (user subset)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def popularity(counts: np.ndarray, recommended: dict[str, np.ndarray], k: int) -> Figure:
    """How popular the recommended items are, against the catalogue.

    Left: the distribution of item popularity over the catalogue's items and over each
    model's top-``k`` slots. Right: the share of slots (or, for the catalogue, of
    interactions) that goes to the most popular x% of items.
    """
    fig, (left, right) = _figure(10, 3.8, 2)
    counts = np.maximum(counts, 1)
    bins = np.unique(np.geomspace(1, counts.max() + 1, 30).round())
    left.hist(counts, bins=bins, weights=np.full(len(counts), 1 / len(counts)), histtype="stepfilled",
              alpha=0.25, color="grey", label="catalogue (items)")
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(counts), dtype=np.int64)
    rank[order] = np.arange(len(counts))
    share = np.arange(1, len(counts) + 1) / len(counts) * 100
    right.plot(share, np.cumsum(counts[order]) / counts.sum(), color="grey", label="catalogue (interactions)")
    for label, slots in recommended.items():
        left.hist(counts[slots], bins=bins, weights=np.full(len(slots), 1 / len(slots)), histtype="step",
                  linewidth=1.5, label=label)
        right.plot(share, np.cumsum(np.bincount(rank[slots], minlength=len(counts))) / len(slots), label=label)
    right.plot([0, 100], [0, 1], color="grey", linestyle=":", linewidth=1, label="uniform")
    left.set(xscale="log", xlabel="item popularity (interactions in the dataset)", ylabel="share",
             title=f"popularity of top-{k} items vs the catalogue")
    right.set(xlabel="most popular items (% of the catalogue)", ylabel="cumulative share",
              title=f"share of top-{k} slots on the most popular items")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def sequence_lengths(lengths: np.ndarray) -> Figure:
    """Users by number of interactions (log-spaced bins when lengths span more than a decade)."""
    fig, (ax,) = _figure(6.5, 3.4)
    low, high = max(int(lengths.min()), 1), int(lengths.max())
    wide = high / low > 10
    if wide:
        bins = np.unique(np.geomspace(low, high + 1, 40).round())
    else:
        bins = np.linspace(low, high + 1, min(high - low + 2, 41))
    ax.hist(lengths, bins=bins, color="#4c72b0")
    median = float(np.median(lengths))
    ax.axvline(median, color="black", linestyle="--", linewidth=1, label=f"median {median:g}")
    ax.axvline(float(lengths.mean()), color="#dd8452", linestyle=":", linewidth=1.5,
               label=f"mean {lengths.mean():.1f}")
    ax.set(xlabel="interactions per user" + (" (log scale)" if wide else ""), ylabel="users",
           title=f"sequence lengths of {len(lengths):,} users", xscale="log" if wide else "linear")
    if wide:  # plain numbers at 1-2-5 steps instead of crowded 3x10^1-style minor labels
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def fusion_weights(rows: list[dict[str, float]], chosen: float, best: float, p: float) -> Figure:
    """The harmonized model's validation Recall@10 and NDCG@10 at each LLM weight, the best and the one kept."""
    fig, (ax,) = _figure(5.5, 3.4)
    for metric in ("recall@10", "ndcg@10"):
        ax.plot([r["weight"] for r in rows], [r[metric] for r in rows], marker="o", markersize=3, label=metric)
    if best != chosen:
        ax.axvline(best, color="grey", linestyle=":", linewidth=1, label=f"best: w={best:g} (p={p:.2g} vs w=0)")
    ax.axvline(chosen, color="black", linestyle="--", linewidth=1, label=f"kept: w={chosen:g}")
    ax.set(xlabel="LLM weight w (0 = SASRec's list)", ylabel="validation", title="harmonized: the fitted weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
