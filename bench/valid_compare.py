"""One model of several runs (its ablations) on the same fixed seeded validation users, paired against
the first run: how a setting is chosen, on validation, never on test.

    PYTHONPATH=src .venv/bin/python bench/valid_compare.py --model llm --users 200 \\
        --runs runs/ml-100k runs/ml-100k-prior2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from alignrec.catalog import load_recommender
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.eval.paired import sign_flip_p_value
from alignrec.eval.subset import fixed_users, interval, per_user, split_ranks
from alignrec.rundir import RunDir


def validation_values(run: RunDir, model: str, users_count: int, k: int) -> tuple[dict[str, np.ndarray], float]:
    """Each fixed validation user's Recall/NDCG at 10 and ``k`` for ``model`` of ``run``, and the seconds taken."""
    config = load_config(run.config)
    dataset = SequenceDataset.load(run.data)
    users = fixed_users(dataset, users_count, config.seed)
    recommender = load_recommender(run.root, model, dataset, "valid")
    started = time.perf_counter()
    ranks = split_ranks(recommender.recommend, dataset, users, "valid", k)
    return per_user(ranks, [10, k]), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, type=Path, help="run folders on the same data; the first is the baseline")
    parser.add_argument("--model", default="llm")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    fingerprints = {SequenceDataset.load(RunDir(run).data).fingerprint() for run in args.runs}
    if len(fingerprints) > 1:
        raise SystemExit("the runs hold different data: their validation users are not the same")
    values = [(str(run), *validation_values(RunDir(run), args.model, args.users, args.k)) for run in args.runs]
    base = values[0][1]
    print(f"{args.model} on {args.users} fixed validation users; change and paired sign-flip p against {args.runs[0]}")
    print(f"| run | recall@10 | ndcg@10 | recall@{args.k} | ndcg@10 change | p | seconds |")
    print("|---|---|---|---|---|---|---|")
    for index, (name, got, seconds) in enumerate(values):
        mean, half = interval(got["ndcg@10"])
        change = f"{mean / base['ndcg@10'].mean() - 1:+.1%}" if base["ndcg@10"].mean() else "-"  # undefined at 0
        p = "-" if index == 0 else f"{sign_flip_p_value(got['ndcg@10'] - base['ndcg@10']):.4f}"
        print(f"| {name} | {got['recall@10'].mean():.4f} | {mean:.4f} ± {half:.4f} | {got[f'recall@{args.k}'].mean():.4f} "
              f"| {change} | {p} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
