"""Same-second ratings: how many test items share their timestamp, and how each model fares on them.

A leave-one-out test item that shares its second with the validation item comes
from a burst of ratings entered together; which of the burst is "last" is only
the file's order. This prints, for a prepared dataset, the share of such ties
and, for every ranked-list file given, Recall@10 on tied and on untied test
items side by side (the split a published number on another copy of the data
may not share).

    .venv/bin/python bench/ties.py --data runs/ml-1m/data \\
        runs/ml-1m-final/mostpop/rankings_test.jsonl runs/ml-1m-final/sasrec/rankings_test.jsonl
"""

from __future__ import annotations

import argparse

import numpy as np

from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import eval_users, targets
from alignrec.eval.predictions import read_predictions


def tie_shares(dataset: SequenceDataset, users: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of consecutive same-second pairs, and per user of ``users`` whether test ties validation."""
    stamps, offsets = dataset.timestamps, dataset.offsets
    if stamps is None:
        raise SystemExit(f"{dataset.name}: the prepared dataset has no timestamps; nothing to measure")
    same = np.diff(stamps) == 0
    inside_user = np.ones(len(stamps) - 1, dtype=bool)
    inside_user[offsets[1:-1] - 1] = False  # pairs across two users do not count
    return float(same[inside_user].mean()), stamps[offsets[users + 1] - 1] == stamps[offsets[users + 1] - 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("rankings", nargs="*", help="rankings_test.jsonl files to split by ties")
    args = parser.parse_args()
    dataset = SequenceDataset.load(args.data)
    users = eval_users(dataset)
    pair_share, tied = tie_shares(dataset, users)
    print(f"{dataset.name}: {pair_share:.1%} of consecutive ratings share a second; "
          f"{tied.mean():.1%} of {len(users)} test items share theirs with the validation item")
    truth = targets(dataset, users, "test")
    print(f"{'rankings':60} {f'Recall@{args.k} tied':>16} {'untied':>8} {'ratio':>6}")
    for path in args.rankings:
        ranked = read_predictions(path, dataset)
        hits = np.array([truth[i] in ranked.get(int(user), [])[: args.k] for i, user in enumerate(users)])
        on_tied, on_untied = hits[tied].mean(), hits[~tied].mean()
        print(f"{path:60} {on_tied:>16.4f} {on_untied:>8.4f} {on_tied / max(on_untied, 1e-9):>6.2f}")


if __name__ == "__main__":
    main()
