"""Every model against a baseline on the same users: the relative change and a paired test.

Two models ranked for the same users differ user by user; a paired test uses that,
and detects far smaller differences than two independent intervals would. The test
is a sign-flip permutation test on the per-user differences (Recall@K hits, NDCG@K
gains): under "no difference" each user's difference is as likely to have either
sign, so the p-value is the share of random sign flips whose mean difference is at
least as far from 0 as the observed one (two-sided; seeded, so reruns agree;
``(1 + hits) / (1 + resamples)``, never 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alignrec.config import EvalConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import eval_users
from alignrec.errors import AlignrecError
from alignrec.eval.subset import per_user, user_ranks

RESAMPLES = 10_000
BASELINE = "sasrec"
"""The model every other is tested against in a run's comparison and report: the one to beat."""
METRICS = ("recall@10", "ndcg@10", "recall@20")
"""The columns when ``eval.ks`` holds 10 and 20; other cut-offs fall back to the largest one."""


def paired_metrics(ks: Sequence[int]) -> list[str]:
    """The metrics the paired table shows for these cut-offs: never none, so the table is never empty."""
    chosen = [m for m in METRICS if int(m.split("@")[1]) in ks]
    return chosen or [f"recall@{max(ks)}", f"ndcg@{max(ks)}"]


def sign_flip_p_value(differences: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of the mean of paired ``differences`` under random sign flips."""
    differences = np.asarray(differences, dtype=np.float64)
    observed = abs(differences.mean()) if len(differences) else 0.0
    if observed == 0.0:
        return 1.0
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, len(differences)))
    flipped = np.abs(signs @ differences) / len(differences)
    return float((1 + np.count_nonzero(flipped >= observed - 1e-12)) / (1 + resamples))


def paired_rows(
    dataset: SequenceDataset, rankings: dict[str, dict[int, Sequence[int]]], baseline: str, users: np.ndarray,
    settings: EvalConfig, metrics: Sequence[str] | None = None, resamples: int = RESAMPLES, seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per model: each metric's mean, its change relative to ``baseline`` and the paired p-value."""
    if baseline not in rankings:
        raise AlignrecError(f"--baseline {baseline}: not among the compared models ({', '.join(rankings)})")
    values = {name: per_user(user_ranks(dataset, lists, users, settings), settings.ks)
              for name, lists in rankings.items()}
    chosen = [m for m in (metrics or paired_metrics(settings.ks)) if m in values[baseline]]
    rows = []
    for name, value in values.items():
        row: dict[str, Any] = {"model": name, "users": int(len(users)), "metrics": {}}
        for metric in chosen:
            mean, base = float(value[metric].mean()), float(values[baseline][metric].mean())
            row["metrics"][metric] = {
                "value": mean,
                "relative": mean / base - 1 if base > 0 else None,
                "p": None if name == baseline else sign_flip_p_value(value[metric] - values[baseline][metric],
                                                                      resamples, seed),
            }
        rows.append(row)
    return rows


def common_users(dataset: SequenceDataset, rankings: dict[str, dict[int, Sequence[int]]]) -> np.ndarray:
    """The evaluable users every model ranked (a model ranked on a subset narrows it to that subset)."""
    users = eval_users(dataset)
    for lists in rankings.values():
        users = users[np.isin(users, np.fromiter(lists, dtype=np.int64, count=len(lists)))]
    return users


def paired_cells(rows: list[dict[str, Any]], baseline: str) -> tuple[list[str], list[list[str]]]:
    """The table's header and cells: each value with its relative change and p-value (one format for
    ``comparison.md`` and the report)."""
    metrics = list(rows[0]["metrics"]) if rows else []
    cells = []
    for row in rows:
        line = [row["model"], f"{row['users']:,}"]
        for metric in metrics:
            cell = row["metrics"][metric]
            if row["model"] == baseline:
                line.append(f"{cell['value']:.4f} (baseline)")
            else:
                change = f"{cell['relative']:+.1%}" if cell["relative"] is not None else "n/a"
                line.append(f"{cell['value']:.4f} ({change}, p={cell['p']:.4f})")
        cells.append(line)
    return ["model", "users", *metrics], cells


def paired_markdown(rows: list[dict[str, Any]], baseline: str) -> str:
    header, cells = paired_cells(rows, baseline)
    lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    return "\n".join(lines + [f"| {' | '.join(line)} |" for line in cells])
