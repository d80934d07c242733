"""Variants of one model side by side: each trains in its own process, all at once.

Meant for a GPU, which many small training processes share well: choosing
SASRec settings before one confirming run on the CPU machine whose budget the
result must fit (each variant caps its epochs at what that budget affords it),
or the LLM's ablations, every one trained and ranked by the same code. The
last column is each variant's test NDCG@10 over the first variant's.

    python bench/sweep.py sasrec --data runs/ml-1m/data --out runs/sweep --config ml-1m \\
        base:epochs=70 windows:all_windows=true,epochs=48
    python bench/sweep.py llm --data runs/ml-100k/data --tokens runs/ml-100k/tokens --out runs/abl \\
        --set device=cuda main: random:token_init=random cf:tokens=runs/ml-100k/tokens-cf

A variant is ``name:key=value,...``: keys without a dot belong to the model's
section (``sasrec.`` or ``llm.``); ``data`` and ``tokens`` replace the inputs.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path


def parse_variant(text: str, section: str) -> tuple[str, dict[str, str], list[str]]:
    """``name:key=value,...`` -> (name, input overrides, ``--set`` overrides)."""
    name, _, settings = text.partition(":")
    inputs, overrides = {}, []
    for pair in filter(None, settings.split(",")):
        key, _, value = pair.partition("=")
        if key in ("data", "tokens"):
            inputs[key] = value
        else:
            overrides.append(f"{key if '.' in key else f'{section}.{key}'}={value}")
    return name, inputs, overrides


def best_valid(log: Path) -> tuple[float, int]:
    """SASRec's best validation Recall@10 and its epoch, from train_log.csv."""
    rows = [r for r in csv.DictReader(log.open()) if r.get("valid_ndcg@10")] if log.is_file() else []
    if not rows:
        return float("nan"), 0
    best = max(rows, key=lambda r: float(r["valid_ndcg@10"]))
    return float(best["valid_recall@10"]), int(best["epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["sasrec", "llm"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--tokens", help="llm: the tokenizer output")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="default")
    parser.add_argument("--set", action="append", default=[], help="an override for every variant")
    parser.add_argument("variants", nargs="+", help="name:key=value,...")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    processes = {}
    for text in args.variants:
        name, inputs, overrides = parse_variant(text, args.model)
        command = [sys.executable, "-m", "alignrec.cli", "train", args.model, "--data",
                   inputs.get("data", args.data), "--out", str(out / name), "--config", args.config]
        tokens = inputs.get("tokens", args.tokens)
        if tokens:
            command += ["--tokens", tokens]
        for override in [*args.set, *overrides]:
            command += ["--set", override]
        log = (out / f"{name}.log").open("w")
        processes[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), inputs, overrides)
    failed = [name for name, (process, _, _) in processes.items() if process.wait() != 0]
    print(f"{len(processes)} variants in {time.perf_counter() - started:.0f} s, at once; failed: {failed or 'none'}")
    print(f"{'variant':12} {'users':>6} {'epochs':>6} {'best':>5} {'train s':>8} {'valid HR@10':>11} "
          f"{'HR@10':>7} {'NDCG@10':>8} {'HR@20':>7} {'ratio':>6}  settings")
    first = None
    for name, (_, inputs, overrides) in processes.items():
        metrics_file = out / name / "metrics.json"
        if not metrics_file.is_file():
            print(f"{name:12} (no metrics; see {out / f'{name}.log'})")
            continue
        saved = json.loads(metrics_file.read_text())
        metrics = saved["metrics"]
        if args.model == "llm":  # "best" column: optimiser steps; "valid": the final in-training check
            summary_file = out / name / "train_summary.json"
            summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
            valid_hr, best_epoch = summary.get("valid_subset_recall@10", float("nan")), summary.get("steps", 0)
        else:
            valid_hr, best_epoch = best_valid(out / name / "train_log.csv")
        first = first or metrics["ndcg@10"]
        settings = " ".join([*(f"{k}={v}" for k, v in inputs.items()), *overrides])
        print(f"{name:12} {saved['num_users']:>6} {saved.get('epochs', 0):>6} {best_epoch:>5} "
              f"{saved.get('train_time_s') or 0:>8.0f} {valid_hr:>11.4f} {metrics['recall@10']:>7.4f} "
              f"{metrics['ndcg@10']:>8.4f} {metrics['recall@20']:>7.4f} {metrics['ndcg@10'] / first:>6.2f}  {settings}")


if __name__ == "__main__":
    main()
