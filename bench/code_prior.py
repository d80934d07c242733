"""The code prior before any training: the LLM as the run builds it for training (aligned code rows,
LoRA not yet stepped) at several ``llm.code_prior`` strengths, against MostPop, on the same fixed
seeded validation users, with a paired test against MostPop. Validation only: the strength is
chosen here, never on test.

    PYTHONPATH=src .venv/bin/python bench/code_prior.py --run runs/ml-100k --users 200 --strengths 0 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from alignrec.catalog import load_recommender
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import history, targets
from alignrec.eval.metrics import target_rank
from alignrec.eval.paired import sign_flip_p_value
from alignrec.eval.subset import fixed_users, per_user
from alignrec.llm.build import build_llm
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import load_artifact


def rank(recommender, dataset: SequenceDataset, users: np.ndarray, k: int) -> dict[int, list[int]]:  # noqa: ANN001
    histories = [history(dataset, int(user), "valid") for user in users]
    lists: dict[int, list[int]] = {}
    size = max(recommender.batch_size, 1)
    for start in range(0, len(users), size):
        items, _ = recommender.recommend(histories[start : start + size], k, True)
        lists.update({int(user): row.tolist() for user, row in zip(users[start : start + size], items, strict=True)})
    return lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run folder with data/, tokens/ and mostpop/")
    parser.add_argument("--users", type=int, default=200, help="fixed seeded validation users")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()

    run = RunDir(args.run)
    config = load_config(run.config)
    dataset = SequenceDataset.load(run.data)
    artifact = load_artifact(run.tokens)
    users = fixed_users(dataset, args.users, config.seed)
    lists = {"mostpop": rank(load_recommender(run.root, "mostpop", dataset), dataset, users, args.k)}
    seconds = {"mostpop": 0.0}
    for strength in args.strengths:
        llm = config.llm.model_copy(update={"code_prior": strength})
        started = time.perf_counter()
        recommender = build_llm(llm, artifact, dataset, config.seed).recommender
        lists[f"llm, prior {strength:g}"] = rank(recommender, dataset, users, args.k)
        seconds[f"llm, prior {strength:g}"] = time.perf_counter() - started

    goal = targets(dataset, users, "valid")

    def values(name: str) -> dict[str, np.ndarray]:
        """Each user's Recall/NDCG at 10 and k for their validation target (the lists exclude the history)."""
        ranks = np.array([target_rank(lists[name][int(user)], int(target))
                          for user, target in zip(users, goal, strict=True)])
        return per_user(ranks, [10, args.k])

    base = values("mostpop")
    print(f"{len(users)} validation users of {dataset.name}, the untrained LLM (no LoRA step), top {args.k}")
    print(f"| model | recall@10 | ndcg@10 | recall@{args.k} | vs MostPop (ndcg@10) | p | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in lists:
        got = values(name)
        change = got["ndcg@10"].mean() / base["ndcg@10"].mean() - 1 if base["ndcg@10"].mean() else float("nan")
        p = "-" if name == "mostpop" else f"{sign_flip_p_value(got['ndcg@10'] - base['ndcg@10']):.4f}"
        print(f"| {name} | {got['recall@10'].mean():.4f} | {got['ndcg@10'].mean():.4f} | "
              f"{got[f'recall@{args.k}'].mean():.4f} | {change:+.1%} | {p} | {seconds[name]:.0f} |")


if __name__ == "__main__":
    main()
