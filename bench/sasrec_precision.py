"""SASRec training step: float32 against bfloat16 autocast, on the same real batches.

Both start from the same weights and take the same batches of epoch 1, interleaved
(fp32 step, bf16 step, ...) so the machine's noise hits both alike. Prints the median
step time of each, their ratio, and both losses after the last step.

    .venv/bin/python bench/sasrec_precision.py --data runs/ml-1m/data --config ml-1m --steps 12
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.models.sasrec import PAD, SASRec
from alignrec.train.sasrec import (
    bucketed_batches,
    earlier_mask,
    sequence_loss,
    training_windows,
    trim_padding,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--config", default="ml-1m", help="preset or YAML file")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    args = parser.parse_args()
    config = load_config(args.config, args.set).sasrec
    dataset = SequenceDataset.load(args.data)
    inputs, outputs, earlier = training_windows(dataset, config.max_len, config.all_windows)
    lengths = (inputs != PAD).sum(1).numpy()
    batches = bucketed_batches(lengths, config.batch_size, np.random.default_rng([42, 1]))[: args.steps]
    torch.manual_seed(42)
    models = {"fp32": SASRec(dataset.num_items, config)}
    models["bf16"] = copy.deepcopy(models["fp32"])
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=config.lr) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, float] = {}
    for step, index in enumerate(batches):
        batch_in, batch_out = trim_padding(inputs[index], outputs[index])
        seen = earlier_mask([earlier[i] for i in index], dataset.num_items) if config.exclude_seen else None
        for name, model in models.items():
            torch.manual_seed(step)  # the same dropout masks for both
            model.train()
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                loss = sequence_loss(model, batch_in, batch_out, config.loss, seen)  # it copies the rows it masks
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            times[name].append(time.perf_counter() - started)
            losses[name] = loss.item()
    median = {name: statistics.median(t[1:]) for name, t in times.items()}  # the first step warms up
    print(f"{dataset.name}: {len(batches)} steps of batch {config.batch_size}, hidden {config.hidden}")
    for name in models:
        print(f"{name}: median step {median[name]:.3f} s, loss after the last step {losses[name]:.4f}")
    print(f"bf16 / fp32 step time: {median['bf16'] / median['fp32']:.2f}x")


if __name__ == "__main__":
    main()
