"""SASRec loss ablation: full-softmax cross-entropy vs the original one-negative BCE.

Both train on the same prepared dataset, same architecture, seed and wall-time
budget, one after the other in this process; the script prints test metrics
side by side and their ratio.

    .venv/bin/python bench/sasrec_loss.py --data runs/ml-100k/data --minutes 4
"""

from __future__ import annotations

import argparse
import tempfile
import time

from alignrec.config import EvalConfig, SASRecConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.train.sasrec import evaluate_sasrec, train_sasrec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per loss")
    parser.add_argument("--max-len", type=int, default=200)
    args = parser.parse_args()
    dataset = SequenceDataset.load(args.data)
    base = SASRecConfig(max_len=args.max_len, epochs=1000, patience=5, eval_every=2, max_minutes=args.minutes)
    results = {}
    for loss in ("ce", "bce"):
        config = base.model_copy(update={"loss": loss})
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            model, state = train_sasrec(dataset, config, out, seed=42, progress=False)
            test = evaluate_sasrec(model, dataset, "test", EvalConfig(ks=[10, 20]), progress=False)
        results[loss] = (test.metrics, state, time.perf_counter() - started)
    print(f"dataset {dataset.name}: {dataset.num_users} users, {dataset.num_items} items; "
          f"budget {args.minutes} min per loss")
    print(f"{'loss':5} {'epochs':>6} {'best':>5} {'train s':>8} {'HR@10':>7} {'NDCG@10':>8} {'HR@20':>7}")
    for loss, (metrics, state, _) in results.items():
        print(f"{loss:5} {state.epoch:6d} {state.best_epoch:5d} {state.elapsed:8.0f} "
              f"{metrics['recall@10']:7.4f} {metrics['ndcg@10']:8.4f} {metrics['recall@20']:7.4f}")
    ce, bce = results["ce"][0], results["bce"][0]
    print(f"ratio ce/bce: HR@10 {ce['recall@10'] / max(bce['recall@10'], 1e-12):.2f}x, "
          f"NDCG@10 {ce['ndcg@10'] / max(bce['ndcg@10'], 1e-12):.2f}x")


if __name__ == "__main__":
    main()
