"""Score ranked lists against the leave-one-out targets and write ``metrics.json``.

Every model, classical or LLM, goes through :func:`evaluate_rankings`, so the
numbers in a comparison table differ only by the lists the models produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignrec.config import EvalConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split, eval_users, history, targets
from alignrec.eval.metrics import coverage_at, mrr, ndcg_at, recall_at, target_rank
from alignrec.eval.ranking import INVALID, clean_ranking
from alignrec.io import write_json, write_jsonl
from alignrec.provenance import environment


@dataclass
class EvalResult:
    dataset: str
    model: str
    split: Split
    num_users: int
    metrics: dict[str, float]
    diagnostics: dict[str, Any]
    rankings: dict[int, list[int]] = field(repr=False)
    """The cleaned lists that were scored, by internal user id."""

    def to_json(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "split": self.split,
            "num_users": self.num_users,
            "metrics": self.metrics,
            "diagnostics": self.diagnostics,
            "config": config or {},
        }


def evaluate_rankings(
    dataset: SequenceDataset,
    rankings: dict[int, Sequence[int]],
    split: Split,
    model: str,
    settings: EvalConfig | None = None,
    users: np.ndarray | None = None,
) -> EvalResult:
    """Recall@K, NDCG@K, MRR, coverage@K and the invalid-id share over all evaluable users
    (or over ``users``, a subset of them, so that slow models are scored on the same users).

    Users absent from ``rankings`` count as misses. MRR is over the scored list
    (length ``max(ks)``): a target ranked lower contributes 0. ``diagnostics["ranked_items"]``,
    the longest list submitted, lets a table flag a cut-off above it (``alignrec.eval.compare``).
    """
    settings = settings or EvalConfig()
    ks, exclude_history = settings.ks, settings.exclude_history
    evaluable = eval_users(dataset)
    if users is None:
        users = evaluable
    elif not np.isin(users, evaluable).all():
        raise ValueError("evaluate_rankings: users must be evaluable users (at least 3 interactions)")
    goal = targets(dataset, users, split)
    length = max(ks)
    ranks = np.zeros(len(users), dtype=np.int64)
    cleaned: dict[int, list[int]] = {}
    submitted = invalid = targets_in_history = missing = ranked = 0
    for index, (user, target) in enumerate(zip(users.tolist(), goal.tolist(), strict=True)):
        raw = rankings.get(user)
        if raw is None:
            missing += 1
            cleaned[user] = []
            continue
        ranked = max(ranked, len(raw))
        seen = history(dataset, user, split) if exclude_history else np.empty(0, dtype=np.int64)
        if exclude_history and target in set(seen.tolist()):
            targets_in_history += 1
        ranking = clean_ranking(raw, seen, length)
        submitted += len(ranking)
        invalid += sum(1 for item in ranking if item == INVALID)
        cleaned[user] = ranking
        ranks[index] = target_rank(ranking, target)
    metrics: dict[str, float] = {}
    for k in sorted(ks):
        metrics[f"recall@{k}"] = recall_at(ranks, k)
        metrics[f"ndcg@{k}"] = ndcg_at(ranks, k)
    metrics["mrr"] = mrr(ranks)
    lists = list(cleaned.values())
    for k in sorted(ks):
        metrics[f"coverage@{k}"] = coverage_at(lists, k, dataset.num_items)
    diagnostics = {
        "invalid_item_share": invalid / submitted if submitted else 0.0,
        "users_without_ranking": missing,
        "targets_in_history": targets_in_history,
        "exclude_history": exclude_history,
        "list_length": length,
        "ranked_items": ranked,
        "user_subset": len(users) < len(evaluable),
    }
    return EvalResult(dataset.name, model, split, len(users), metrics, diagnostics, cleaned)


def write_evaluation(
    run_dir: str | Path,
    result: EvalResult,
    dataset: SequenceDataset,
    config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """``metrics.json`` (+ ``extra`` such as wall times, and the code and machine that made it)
    and the scored lists with original ids."""
    run_dir = Path(run_dir)
    payload = result.to_json(config)
    payload.update(extra or {})
    payload["environment"] = environment()
    write_jsonl(
        run_dir / f"rankings_{result.split}.jsonl",
        (
            {
                "user": str(dataset.user_ids[user]),
                "items": [str(dataset.item_ids[i]) if i != INVALID else None for i in ranking],
            }
            for user, ranking in result.rankings.items()
        ),
    )
    write_json(run_dir / "metrics.json", payload)
