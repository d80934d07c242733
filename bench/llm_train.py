"""Fine-tuning throughput: fp32 vs bf16 autocast, same data, same steps, one run.

    .venv/bin/python bench/llm_train.py --data runs/ml-100k/data --tokens runs/ml-100k/tokens --steps 6

Prints tokens/s, examples/s and peak memory of each, and the bf16/fp32 ratio.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.tokenize.artifacts import load_artifact
from alignrec.train.llm import train_llm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    dataset = SequenceDataset.load(args.data)
    artifact = load_artifact(args.tokens)
    results = {}
    for precision in ("fp32", "bf16"):
        config = load_config("default", [
            f"llm.backbone={args.backbone}", f"llm.max_steps={args.steps}", "llm.eval_steps=0",
            f"llm.save_steps={args.steps * 10}", f"llm.bf16={precision == 'bf16'}", *args.set])
        with tempfile.TemporaryDirectory() as out:
            summary = train_llm(dataset, artifact, config.llm, Path(out), config.seed)
        results[precision] = summary
        print(f"{precision}: {summary['tokens_per_s']:.0f} tokens/s, {summary['examples_per_s']:.2f} examples/s, "
              f"loss {summary['train_loss']:.3f}, peak RSS {summary['peak_rss_gib']:.1f} GiB", flush=True)
    ratio = results["bf16"]["tokens_per_s"] / results["fp32"]["tokens_per_s"]
    print(f"bf16 / fp32 tokens/s: {ratio:.2f}x  (batch {config.llm.batch_size} x {config.llm.max_tokens} tokens, "
          f"grad accum {config.llm.grad_accum}, {args.steps} steps each)")


if __name__ == "__main__":
    main()
