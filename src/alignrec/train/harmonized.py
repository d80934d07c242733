"""Fitting the harmonized recommender's one weight on validation users, never on test.

Both models rank each validation user's candidates once (the expensive part: the
LLM's search); every weight of the grid then re-orders the same candidates, so the
grid costs nothing more. The weight with the best validation NDCG@10 is kept (the
smaller on a tie, toward SASRec), with the whole grid, in ``harmonized/fusion.json``,
and ``fitting.png`` plots it. Neither model trained on a validation target (the LLM's
tasks read the training split, SASRec only stops early on it; the config refuses
``sasrec.train_on=train+valid`` here), so the fit sees what the test will.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from alignrec.config import EvalConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import history, targets
from alignrec.eval.metrics import ndcg_at, recall_at
from alignrec.eval.subset import fixed_users
from alignrec.figures import fusion_weights, png
from alignrec.io import atomic_open, write_json
from alignrec.llm.build import load_recommender as load_llm
from alignrec.models.harmonized import FUSION, Candidates, HarmonizedRecommender, fuse
from alignrec.models.sasrec import load

if TYPE_CHECKING:
    from alignrec.catalog import TrainContext

SELECT_BY = "ndcg@10"


def collect_candidates(
    recommender: HarmonizedRecommender, dataset: SequenceDataset, users: np.ndarray, settings: EvalConfig,
    progress: bool = True,
) -> Candidates:
    """Every user's candidates for their validation target, in ``users``' order."""
    order = np.argsort(dataset.lengths[users], kind="stable")  # similar lengths share a batch
    size = max(recommender.batch_size, 1)
    parts: dict[int, Candidates] = {}
    for start in tqdm(range(0, len(users), size), desc="harmonized fitting", unit="batch", disable=not progress,
                      leave=False):
        rows = order[start : start + size]
        histories = [history(dataset, int(users[row]), "valid") for row in rows]
        found = recommender.candidates(histories, max(settings.ks), settings.exclude_history)
        for index, row in enumerate(rows):
            parts[int(row)] = Candidates(found.items[index], found.sasrec[index], found.llm[index])
    width = max(len(part.items) for part in parts.values())

    def stack(name: str, pad: float) -> np.ndarray:
        values = [getattr(parts[row], name) for row in range(len(users))]
        return np.stack([np.pad(v, (0, width - len(v)), constant_values=pad) for v in values])

    return Candidates(stack("items", -1).astype(np.int64), stack("sasrec", -np.inf), stack("llm", -np.inf))


def grid_scores(
    candidates: Candidates, goal: np.ndarray, weights: np.ndarray, length: int
) -> list[dict[str, float]]:
    """Recall@10 and NDCG@10 of the fused lists at each weight."""
    rows = []
    for weight in weights.tolist():
        items, _ = fuse(candidates, weight, length)
        hit = items == goal[:, None]
        ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
        rows.append({"weight": weight, "recall@10": recall_at(ranks, 10), "ndcg@10": ndcg_at(ranks, 10)})
    return rows


def best_weight(rows: list[dict[str, float]]) -> dict[str, float]:
    """The row with the best NDCG@10; the first (smallest weight) among equals."""
    return max(rows, key=lambda row: (row[SELECT_BY], -row["weight"]))


def train_stage(context: TrainContext) -> dict[str, Any]:
    """The catalog's trainer: fit (or take) the weight; ``fusion.json`` in the run's ``harmonized/``."""
    config, dataset = context.config, context.dataset
    settings = config.harmonized
    folder = context.run.model("harmonized")
    folder.path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if settings.weight is not None:
        write_json(folder.file(FUSION), {"weight": settings.weight, "fitted": False})
        return {"weight": settings.weight}
    llm = load_llm(context.run, dataset, "valid")
    sasrec = load(context.run.model("sasrec"), dataset).to(next(llm.model.parameters()).device)
    recommender = HarmonizedRecommender(sasrec, llm, settings, weight=0.0)
    users = fixed_users(dataset, settings.fit_users, config.seed)
    candidates = collect_candidates(recommender, dataset, users, config.eval, context.progress)
    weights = np.linspace(0.0, 1.0, settings.grid)
    rows = grid_scores(candidates, targets(dataset, users, "valid"), weights, max(config.eval.ks))
    chosen = best_weight(rows)
    fit_s = time.perf_counter() - started
    write_json(folder.file(FUSION), {"weight": chosen["weight"], "fitted": True, "select_by": SELECT_BY,
                                     "users": len(users), "split": "valid", "grid": rows, "fit_time_s": fit_s})
    with atomic_open(folder.file("fitting.png"), "wb") as handle:
        handle.write(png(fusion_weights(rows, chosen["weight"]), dpi=110))
    sasrec_row, llm_row = rows[0], rows[-1]
    return {"weight": chosen["weight"], "fit_time_s": fit_s, "fit_users": len(users),
            **{f"valid_{m}": chosen[m] for m in ("recall@10", "ndcg@10")},
            **{f"valid_w0_{m}": sasrec_row[m] for m in ("recall@10", "ndcg@10")},
            **{f"valid_w1_{m}": llm_row[m] for m in ("recall@10", "ndcg@10")}}
