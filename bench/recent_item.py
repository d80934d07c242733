"""How much each model's test ranking owes to the user's newest item: the same fixed seeded test users
ranked from their whole history and from it without the validation item, paired.

Why: the LLM trains on windows that end one item before the validation target, so a validation prompt
ends with an item it has seen there and a test prompt with one it never saw; a model that uses its
prompt's last item gains from it on test, one that replays memorised sequences does not. Without the
validation item that item is left out of the list, so the two lists compete for the same test target.

    PYTHONPATH=src .venv/bin/python bench/recent_item.py --run runs/ml-100k --models sasrec llm harmonized
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from alignrec.catalog import load_recommender
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import history, targets
from alignrec.eval.metrics import target_rank
from alignrec.eval.paired import sign_flip_p_value
from alignrec.eval.subset import fixed_users, interval, per_user
from alignrec.rundir import RunDir


def test_ranks(recommend, dataset: SequenceDataset, users: np.ndarray, k: int,  # noqa: ANN001 - a recommender's method
               with_valid: bool) -> np.ndarray:
    """Each user's test target's rank in ``recommend``'s top ``k``, from the history before the test item
    (``with_valid``) or before the validation item, which is then no candidate."""
    split = "test" if with_valid else "valid"
    items, _ = recommend([history(dataset, int(user), split) for user in users], k + 1)
    dropped = targets(dataset, users, "valid")
    return np.array([target_rank([item for item in row.tolist() if with_valid or item != int(skip)][:k], int(target))
                     for row, target, skip in zip(items, targets(dataset, users, "test"), dropped, strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--models", nargs="+", default=["sasrec", "llm"])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()
    run = RunDir(args.run)
    dataset = SequenceDataset.load(run.data)
    users = fixed_users(dataset, args.users, load_config(run.config).seed)
    print(f"{len(users)} fixed test users of {args.run}: the test target from the history with and without the "
          "validation item (paired sign-flip p on NDCG@10)")
    print(f"| model | history | recall@10 | ndcg@10 | recall@{args.k} | ndcg@10 change | p |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        recommend = load_recommender(run.root, model, dataset, "test").recommend  # loaded once for both histories
        full, cut = (per_user(test_ranks(recommend, dataset, users, args.k, with_valid), [10, args.k])
                     for with_valid in (True, False))
        for name, got in (("whole", full), ("without the validation item", cut)):
            mean, half = interval(got["ndcg@10"])
            base = full["ndcg@10"].mean()
            change = "" if got is full else f"{mean / base - 1:+.1%}" if base else "-"
            p = "" if got is full else f"{sign_flip_p_value(got['ndcg@10'] - full['ndcg@10']):.4f}"
            print(f"| {model} | {name} | {got['recall@10'].mean():.4f} | {mean:.4f} ± {half:.4f} "
                  f"| {got[f'recall@{args.k}'].mean():.4f} | {change} | {p} |")


if __name__ == "__main__":
    main()
