"""Score saved rankings on a fixed subset of test users, with 95% confidence intervals.

LLM decoding is too slow on CPU for every user, so the LLM is ranked on a seeded
subset; to compare fairly, every other model's saved rankings are scored on the same
users. Recall@K is a mean of 0/1 hits: its interval is the normal approximation
``p +- 1.96 sqrt(p (1 - p) / n)``; NDCG@K's uses the sample standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignrec.config import EvalConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import eval_users, history, targets
from alignrec.errors import AlignrecError
from alignrec.eval.metrics import target_rank
from alignrec.eval.predictions import read_predictions
from alignrec.eval.ranking import clean_ranking

Z95 = 1.959964


def fixed_users(dataset: SequenceDataset, count: int, seed: int) -> np.ndarray:
    """A fixed, seeded subset of ``count`` evaluable users (sorted; all of them for 0), the same
    for every model and run."""
    users = eval_users(dataset)
    if count <= 0 or count >= len(users):
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=count, replace=False))


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% normal-approximation interval."""
    n = len(values)
    mean = float(values.mean()) if n else 0.0
    spread = float(values.std(ddof=1)) if n > 1 else 0.0
    return mean, Z95 * spread / math.sqrt(n) if n else 0.0


def user_ranks(
    dataset: SequenceDataset, rankings: dict[int, Sequence[int]], users: np.ndarray, settings: EvalConfig,
) -> np.ndarray:
    """Each of ``users``' test target's rank in its cleaned list (0 = not in the first max(ks))."""
    goal = targets(dataset, users, "test")
    ranks = []
    for user, target in zip(users.tolist(), goal.tolist(), strict=True):
        seen = history(dataset, user, "test") if settings.exclude_history else ()
        ranks.append(target_rank(clean_ranking(rankings.get(user, []), seen, max(settings.ks)), target))
    return np.asarray(ranks)


def split_ranks(recommend: Any, dataset: SequenceDataset, users: np.ndarray, split: str, k: int) -> np.ndarray:
    """Each of ``users``' ``split`` target's rank in ``recommend(histories, k)``'s list, from the history
    before that target (0 = not in the list); history items are left out by the recommender."""
    histories = [history(dataset, int(user), split) for user in users]
    items, _ = recommend(histories, k)
    return np.array([target_rank(row.tolist(), int(target))
                     for row, target in zip(items, targets(dataset, users, split), strict=True)], dtype=np.int64)


def per_user(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """metric@k -> each user's value (Recall@k a 0/1 hit, NDCG@k the discounted gain)."""
    values = {}
    for k in ks:
        hit = (ranks > 0) & (ranks <= k)
        values[f"recall@{k}"] = hit.astype(float)
        values[f"ndcg@{k}"] = np.where(hit, 1 / np.log2(np.maximum(ranks, 1) + 1), 0.0)
    return values


def subset_scores(
    dataset: SequenceDataset, rankings: dict[int, Sequence[int]], users: np.ndarray, settings: EvalConfig,
) -> dict[str, tuple[float, float]]:
    """metric@k -> (mean, 95% half-width) over ``users`` (test split)."""
    values = per_user(user_ranks(dataset, rankings, users, settings), settings.ks)
    return {name: interval(value) for name, value in values.items()}


def read_rankings(dataset: SequenceDataset, folders: Sequence[Path]) -> dict[str, dict[int, list[int]]]:
    """Each model folder's ``rankings_test.jsonl`` (internal ids) by the folder's name."""
    found = {}
    for folder in folders:
        path = Path(folder) / "rankings_test.jsonl"
        if not path.is_file():
            raise AlignrecError(f"{path}: missing; comparing on the same users needs every model's test rankings")
        found[Path(folder).name] = read_predictions(path, dataset)
    return found


def score_on_subset(
    dataset: SequenceDataset, rankings: dict[str, dict[int, list[int]]], users: np.ndarray, settings: EvalConfig,
) -> list[dict[str, Any]]:
    """Each model's saved rankings scored on ``users``."""
    return [{"model": name, "users": int(len(users)), "scores": subset_scores(dataset, lists, users, settings)}
            for name, lists in rankings.items()]


def subset_markdown(rows: list[dict[str, Any]], columns: Sequence[str] = ("recall@10", "ndcg@10", "recall@20")) -> str:
    present = [c for c in columns if rows and c in rows[0]["scores"]]
    columns = present or list(rows[0]["scores"])[:3] if rows else columns
    lines = ["| model | users | " + " | ".join(f"{c} (95% CI)" for c in columns) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        cells = [f"{row['scores'][c][0]:.4f} ± {row['scores'][c][1]:.4f}" for c in columns]
        lines.append(f"| {row['model']} | {row['users']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
