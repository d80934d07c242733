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
from alignrec.eval.paired import sign_flip_p_value
from alignrec.eval.subset import fixed_users, per_user, split_ranks
from alignrec.llm.build import build_llm
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import load_artifact


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

    def values(recommender) -> dict[str, np.ndarray]:  # noqa: ANN001
        """Each user's Recall/NDCG at 10 and k for their validation target."""
        return per_user(split_ranks(recommender.recommend, dataset, users, "valid", args.k), [10, args.k])

    scored = {"mostpop": values(load_recommender(run.root, "mostpop", dataset))}
    seconds = {"mostpop": 0.0}
    for strength in args.strengths:
        llm = config.llm.model_copy(update={"code_prior": strength})
        started = time.perf_counter()
        recommender = build_llm(llm, artifact, dataset, config.seed).recommender
        scored[f"llm, prior {strength:g}"] = values(recommender)
        seconds[f"llm, prior {strength:g}"] = time.perf_counter() - started

    base = scored["mostpop"]
    print(f"{len(users)} validation users of {dataset.name}, the untrained LLM (no LoRA step), top {args.k}")
    print(f"| model | recall@10 | ndcg@10 | recall@{args.k} | vs MostPop (ndcg@10) | p | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, got in scored.items():
        change = got["ndcg@10"].mean() / base["ndcg@10"].mean() - 1 if base["ndcg@10"].mean() else float("nan")
        p = "-" if name == "mostpop" else f"{sign_flip_p_value(got['ndcg@10'] - base['ndcg@10']):.4f}"
        print(f"| {name} | {got['recall@10'].mean():.4f} | {got['ndcg@10'].mean():.4f} | "
              f"{got[f'recall@{args.k}'].mean():.4f} | {change:+.1%} | {p} | {seconds[name]:.0f} |")


if __name__ == "__main__":
    main()
