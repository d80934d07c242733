"""Fitting the harmonized recommender's one weight on validation users, never on test.

Both models rank each validation user's candidates once (the expensive part: the
LLM's search); every weight of the grid then re-orders the same candidates, so the
grid costs nothing more. The weight with the best validation NDCG@10 wins (the
smaller on a tie, toward SASRec), but it replaces weight 0 (SASRec's own lists) only
when a paired sign-flip test over the fit users says it beats them (p below
``harmonized.fit_p``): the best of 21 weights on a few hundred users is otherwise
mostly noise, and a noisy weight costs on test what it seemed to gain. The choice,
the test and the whole grid go in ``harmonized/fusion.json``; ``fitting.png`` plots it. Neither model trained on a validation target (the LLM's
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
from alignrec.eval.paired import sign_flip_p_value
from alignrec.eval.subset import fixed_users, per_user
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


def user_scores(candidates: Candidates, goal: np.ndarray, weight: float, length: int) -> dict[str, np.ndarray]:
    """Each user's Recall@10 hit and NDCG@10 gain for the fused list at ``weight``."""
    items, _ = fuse(candidates, weight, length)
    hit = items == goal[:, None]
    ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    return per_user(ranks, [10])


def grid_scores(
    candidates: Candidates, goal: np.ndarray, weights: np.ndarray, length: int
) -> list[dict[str, float]]:
    """Recall@10 and NDCG@10 of the fused lists at each weight."""
    rows = []
    for weight in weights.tolist():
        values = user_scores(candidates, goal, weight, length)
        rows.append({"weight": weight, **{metric: float(values[metric].mean()) for metric in ("recall@10", SELECT_BY)}})
    return rows


def best_weight(rows: list[dict[str, float]]) -> dict[str, float]:
    """The row with the best NDCG@10; the first (smallest weight) among equals."""
    return max(rows, key=lambda row: (row[SELECT_BY], -row["weight"]))


def guarded_weight(
    candidates: Candidates, goal: np.ndarray, best: float, length: int, fit_p: float, seed: int,
) -> tuple[float, float]:
    """``best`` if its per-user NDCG@10 beats weight 0's by a paired test (p < ``fit_p``), else 0; and that p."""
    if best == 0.0:
        return 0.0, 1.0
    gain = user_scores(candidates, goal, best, length)[SELECT_BY] - user_scores(candidates, goal, 0.0, length)[SELECT_BY]
    p = sign_flip_p_value(gain, seed=seed)
    return (best if gain.mean() > 0 and p < fit_p else 0.0), p


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
    goal, length = targets(dataset, users, "valid"), max(config.eval.ks)
    rows = grid_scores(candidates, goal, weights, length)
    best = best_weight(rows)
    weight, p = guarded_weight(candidates, goal, best["weight"], length, settings.fit_p, config.seed)
    chosen = next(row for row in rows if row["weight"] == weight)
    fit_s = time.perf_counter() - started
    write_json(folder.file(FUSION), {"weight": weight, "fitted": True, "select_by": SELECT_BY,
                                     "best_weight": best["weight"], "p_vs_sasrec": p, "fit_p": settings.fit_p,
                                     "users": len(users), "split": "valid", "grid": rows, "fit_time_s": fit_s})
    with atomic_open(folder.file("fitting.png"), "wb") as handle:
        handle.write(png(fusion_weights(rows, weight, best["weight"], p), dpi=110))
    sasrec_row, llm_row = rows[0], rows[-1]
    return {"weight": weight, "best_weight": best["weight"], "p_vs_sasrec": p, "fit_time_s": fit_s,
            "fit_users": len(users),
            **{f"valid_{m}": chosen[m] for m in ("recall@10", "ndcg@10")},
            **{f"valid_w0_{m}": sasrec_row[m] for m in ("recall@10", "ndcg@10")},
            **{f"valid_w1_{m}": llm_row[m] for m in ("recall@10", "ndcg@10")}}
