"""LLM training and decoding against this machine's matmul roofline: the old path and the new one, side by side.

One run, on the machine it runs on:

1. the roofline: torch matmul throughput at the model's own shapes, bf16 and fp32;
2. the FLOPs one training step and one user's decoding execute, counted by torch's FlopCounterMode
   on the real model (forward and backward; attention as computed, padding and masks included);
3. training steps on the same real batches (SmolLM2, ML-100k's task mixture packed as the default
   run packs it, bf16 autocast), the old path and the new one in turns, each in a fresh process so
   each has its own peak RSS; a path is the default config plus its overrides (``--old``: the
   previous defaults: LoRA dropout 0.05, every beam its own copy of the prompt's KV cache, the
   vocabulary's softmax at every target, attention over whole rows under a mask; ``--new``: none,
   today's default), and both start from the same seeded weights, so their losses show whether a
   lever changes the optimisation (where both paths train the same objective, ``llm.code_softmax``);
4. decoding the same users by a loaded run's merged model on each path, in turns (the new path loads
   it as a run is loaded to decode, its linear weights stored in bf16, and scores codes as its path
   trained them; the old one kept them fp32); the lists are compared (in bf16 each path rounds on its own, so near-tied items may swap).

Prints tokens/s, users/s, the fraction of the measured bf16 matmul peak (model FLOP utilisation) and
peak RSS for each path, optionally a profile of where a step's time goes (by aten op), and ends with
``train speedup X, decode speedup Y, train MFU Z, peak RSS W GiB`` (the new path's MFU and RSS).

    .venv/bin/python bench/llm_throughput.py --quick          # under 3 minutes
    .venv/bin/python bench/llm_throughput.py --rounds 2 --steps 4 --decode-users 32 --profile

The item codes are random distinct 4-level codes (speed does not depend on which codes an item
has), so nothing but the installed venv is needed; the dataset and the model are prepared into
``$ALIGNREC_CACHE``. ``--backbone tiny-random --data PATH --format lcrec`` runs it in seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alignrec.config import DataConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.prepare import prepare_dataset
from alignrec.llm.build import build_llm
from alignrec.llm.encoding import IGNORE, collate
from alignrec.llm.loss import training_loss
from alignrec.paths import cache_dir
from alignrec.seed import seed_everything
from alignrec.tokenize.artifacts import TokenizerArtifact, token_names
from alignrec.train.llm import save_adapter, training_rows

PATHS = ("old", "new")
OLD = ["llm.lora.dropout=0.05", "llm.decode_shared_cache=false", "llm.code_softmax=vocabulary",
       "llm.segment_attention=false"]  # the previous defaults


def matmul_roofline(hidden: int, ffn: int, kv: int, vocab: int, tokens: int, threads: int) -> dict[str, dict[str, float]]:
    """GFLOP/s of ``(tokens x a) @ (a x b)`` at the model's projection shapes, per dtype (median of repeats)."""
    torch.set_num_threads(threads)
    shapes = {"q/o": (hidden, hidden), "k/v": (hidden, kv), "gate/up": (hidden, ffn), "down": (ffn, hidden),
              "head": (hidden, vocab)}
    results: dict[str, dict[str, float]] = {}
    for dtype in (torch.bfloat16, torch.float32):
        row = {}
        for name, (a, b) in shapes.items():
            x, w = torch.randn(tokens, a, dtype=dtype), torch.randn(a, b, dtype=dtype)
            x @ w  # warm-up: oneDNN picks its kernel on the first call
            flops = 2 * tokens * a * b
            repeats = max(3, int(3e10 / flops))
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                x @ w
                times.append(time.perf_counter() - began)
            row[name] = flops / statistics.median(times) / 1e9
        results[str(dtype).removeprefix("torch.")] = row
    return results


def random_codes(dataset: SequenceDataset, levels: int, size: int, hidden: int, seed: int) -> TokenizerArtifact:
    """Distinct random codes for every item: what the speed of training and decoding depends on is their count."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(size**levels, dataset.num_items, replace=False)
    codes = np.stack(np.unravel_index(flat, (size,) * levels), axis=1).astype(np.int64)
    return TokenizerArtifact(
        item_ids=np.asarray(dataset.item_ids, dtype=str), titles=np.asarray([""] * dataset.num_items), codes=codes,
        codebooks=[np.zeros((size, 1), np.float32) for _ in range(levels)], quantizer_state={}, projection={},
        token_embeddings=np.zeros((levels * size, hidden), np.float32), tokens=token_names(levels, size), report={},
    )


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def categorise(name: str) -> str:
    """An aten op -> where its time goes."""
    if "bernoulli" in name or "dropout" in name:
        return "dropout's random numbers"
    if "log_softmax" in name or "logsumexp" in name:
        return "the vocabulary's softmax"
    if any(key in name for key in ("attention", "softmax", "bmm")):  # the projections are mm / addmm, attention bmm
        return "attention"
    if any(key in name for key in ("mm", "linear", "matmul")):
        return "matmuls"
    if any(key in name for key in ("copy", "_to_copy", "cat", "index_select", "contiguous", "clone", "expand",
                                   "repeat", "index")):
        return "copies and casts"
    return "the rest"


def profile_shares(run_once) -> dict[str, float]:  # noqa: ANN001 - a zero-argument callable
    """Share of CPU self time per category over one call of ``run_once``: aten ops only, so the kernels
    ``llm.compile_elementwise`` compiles (its norms, gates and RoPE) are not among them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_once()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            totals[categorise(event.key)] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {name: value / whole for name, value in sorted(totals.items(), key=lambda kv: -kv[1])}


def train_child(job: dict[str, Any]) -> dict[str, Any]:
    """``steps`` timed training steps (after one untimed one) of one path, in a fresh process."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(job["threads"])
    dataset, artifact, configs = torch.load(job["inputs"], weights_only=False)
    config = configs[job["path"]]
    batches = torch.load(job["batches"], weights_only=False)
    seed_everything(config.seed)  # LoRA's initial weights and dropout: the same on both paths
    prepared = build_llm(config.llm, artifact, dataset, config.seed)
    model = prepared.model.train()
    # the Trainer's optimizer (transformers' default ``adamw_torch_fused``): one kernel for all parameters
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.llm.lr, fused=True)

    def step(batch: dict[str, torch.Tensor]) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            total, _ = training_loss(model, batch, prepared.vocab, config.llm.code_softmax,
                                     config.llm.segment_attention)
            loss = total / (batch["labels"][:, 1:] != IGNORE).sum().clamp(min=1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach().item()

    result: dict[str, Any] = {"path": job["path"]}
    step(batches[0])  # warm-up
    losses, seconds, tokens = [], 0.0, 0
    for batch in batches[1 : job["steps"] + 1]:
        began = time.perf_counter()
        losses.append(step(batch))
        seconds += time.perf_counter() - began
        tokens += int(batch["num_tokens"])
    result.update(losses=losses, seconds=seconds, tokens=tokens, peak_rss_gib=peak_rss_gib())
    # counted and profiled after the timed steps: the counter's dispatch may pick other kernels, and both
    # paths' losses must follow the same updates
    if job["count_flops"]:
        with FlopCounterMode(display=False) as counter:
            step(batches[0])
        result["flops_per_step"] = counter.get_total_flops()
    if job["profile"]:
        result["profile"] = profile_shares(lambda: step(batches[0]))
    return result


def decode_child(job: dict[str, Any]) -> dict[str, Any]:
    """Beam search of the users' histories by a loaded (merged) model, computing in bf16: the new path
    loads it as a run loads it to decode (bf16-stored linear weights), the old one kept fp32 weights."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(job["threads"])
    dataset, artifact, configs = torch.load(job["inputs"], weights_only=False)
    config = configs[job["path"]]
    bf16 = config.llm.model_copy(update={"bf16": True})
    recommender = build_llm(bf16, artifact, dataset, config.seed, Path(job["adapter"]),
                            decode_only=job["path"] == "new").recommender
    histories = [dataset.sequence(int(user))[:-1] for user in job["users"]]
    k = job["k"]
    result: dict[str, Any] = {"path": job["path"]}
    warm = histories[:1]  # first calls pay one-off set-up costs
    if job["count_flops"]:
        with FlopCounterMode(display=False) as counter:
            recommender.recommend(warm, k)
        result["flops_per_user"] = counter.get_total_flops() / len(warm)
    else:
        recommender.recommend(warm, k)
    if job["profile"]:
        result["profile"] = profile_shares(lambda: recommender.recommend(warm, k))
    began = time.perf_counter()
    items, scores = recommender.recommend(histories, k)
    result.update(seconds=time.perf_counter() - began, users=len(histories), items=items.tolist(),
                  peak_rss_gib=peak_rss_gib())
    return result


def in_fresh_process(function, job: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, job).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round of 2 steps, 8 users: under 3 minutes")
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--data", help="a dataset folder (default: the built-in ml-100k)")
    parser.add_argument("--format", help="its format (recbole, lcrec, csv)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of old, new per measurement")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per turn")
    parser.add_argument("--decode-users", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true", help="where a training and a decoding step's time goes")
    parser.add_argument("--set", action="append", default=[], help="config overrides of both paths")
    parser.add_argument("--old", action="append", default=None, metavar="KEY=VALUE",
                        help=f"the old path's overrides (default: {' '.join(OLD)}, the previous defaults)")
    parser.add_argument("--new", action="append", default=[], metavar="KEY=VALUE", help="the new path's overrides")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.decode_users = 1, 2, 8

    common = [f"llm.backbone={args.backbone}", "llm.token_init=random", *args.set]
    config = load_config("default", common)
    configs = {"old": load_config("default", [*common, *(args.old or OLD)]),
               "new": load_config("default", [*common, *args.new])}
    data = DataConfig(dataset="ml-100k") if args.data is None else DataConfig(path=args.data, format=args.format)
    folder = cache_dir() / "bench" / (data.dataset if args.data is None else Path(args.data).name)
    dataset = SequenceDataset.load(folder) if (folder / "manifest.json").is_file() else prepare_dataset(data, folder)
    artifact = random_codes(dataset, config.tokenize.levels, config.tokenize.codebook_size, 1, config.seed)
    prepared = build_llm(config.llm, artifact, dataset, config.seed)  # random code rows: the artifact's are unused
    shape = prepared.model.config
    hidden, ffn = shape.hidden_size, shape.intermediate_size
    kv = shape.num_key_value_heads * (hidden // shape.num_attention_heads)
    rows, _ = training_rows(dataset, prepared, config.llm, config.seed)
    batch_size = config.llm.batch_size
    needed = batch_size * (args.steps + 1)
    rows = rows * -(-needed // len(rows))  # a small dataset's rows, repeated
    batches = [collate(rows[i : i + batch_size], prepared.pad_id) for i in range(0, needed, batch_size)]
    tokens_per_batch = batch_size * config.llm.max_tokens
    padding = 1 - sum(int(b["num_tokens"]) for b in batches) / (tokens_per_batch * len(batches))
    per_row = sum(int(b["num_examples"]) for b in batches) / (batch_size * len(batches))
    print(f"{args.backbone}: {sum(p.numel() for p in prepared.model.parameters()) / 1e6:.0f}M parameters; "
          f"{dataset.num_items} items; batches of {batch_size} packed rows x {config.llm.max_tokens} tokens "
          f"({padding:.1%} padding, {per_row:.1f} examples a row); torch {torch.__version__}, {args.threads} threads", flush=True)

    roofline = matmul_roofline(hidden, ffn, kv, shape.vocab_size, tokens_per_batch // 2 or 1, args.threads)
    peak = max(roofline["bfloat16"].values()) * 1e9
    print("\nmatmul GFLOP/s at the model's shapes (x = tokens x in @ in x out):")
    print("| dtype | " + " | ".join(roofline["bfloat16"]) + " |")
    print("|---|" + "---|" * len(roofline["bfloat16"]))
    for dtype, row in roofline.items():
        print(f"| {dtype} | " + " | ".join(f"{value:.0f}" for value in row.values()) + " |")

    with tempfile.TemporaryDirectory() as scratch:
        inputs, batch_file, adapter = Path(scratch) / "inputs.pt", Path(scratch) / "batches.pt", Path(scratch) / "adapter"
        torch.save((dataset, artifact, configs), inputs)
        torch.save(batches, batch_file)
        save_adapter(prepared.model, adapter)  # a fresh LoRA: decoding costs the same whatever its weights
        adapters = {}
        for path in PATHS:  # each path decodes as a run trained with its settings would
            adapters[path] = Path(scratch) / f"adapter-{path}"
            shutil.copytree(adapter, adapters[path])
            (adapters[path] / "vocab.json").write_text(json.dumps({
                "base_vocab": prepared.vocab.base_vocab, "levels": prepared.vocab.levels,
                "codebook_size": prepared.vocab.codebook_size, "code_softmax": configs[path].llm.code_softmax}))
        del prepared
        evaluable = [u for u in range(dataset.num_users) if len(dataset.sequence(u)) >= 3]
        users = np.random.default_rng(config.seed).choice(evaluable, min(args.decode_users, len(evaluable)),
                                                          replace=False)
        train: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
        decode: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
        for turn in range(args.rounds):
            for path in PATHS:
                first = turn == 0
                job = {"path": path, "threads": args.threads, "inputs": str(inputs), "batches": str(batch_file),
                       "steps": args.steps, "count_flops": first, "profile": first and args.profile}
                train[path].append(in_fresh_process(train_child, job))
                print(f"train {path}, turn {turn + 1}: {train[path][-1]['tokens'] / train[path][-1]['seconds']:.0f} "
                      f"tokens/s", flush=True)
            for path in PATHS:
                job = {"path": path, "threads": args.threads, "inputs": str(inputs), "adapter": str(adapters[path]),
                       "users": users.tolist(), "k": max(config.eval.ks), "count_flops": turn == 0,
                       "profile": turn == 0 and args.profile}
                decode[path].append(in_fresh_process(decode_child, job))
                print(f"decode {path}, turn {turn + 1}: {len(users) / decode[path][-1]['seconds']:.2f} users/s",
                      flush=True)

    # Each path's own executed FLOPs: the new one skips most of the head, so its MFU counts less work.
    flops_token = {p: train[p][0]["flops_per_step"] / batches[0]["num_tokens"].item() for p in PATHS}
    flops_user = {p: decode[p][0]["flops_per_user"] for p in PATHS}
    rate = {p: sum(r["tokens"] for r in train[p]) / sum(r["seconds"] for r in train[p]) for p in PATHS}
    users_s = {p: sum(r["users"] for r in decode[p]) / sum(r["seconds"] for r in decode[p]) for p in PATHS}
    rss = {p: max(r["peak_rss_gib"] for r in train[p]) for p in PATHS}
    decode_rss = {p: max(r["peak_rss_gib"] for r in decode[p]) for p in PATHS}
    mfu = {p: rate[p] * flops_token[p] / peak for p in PATHS}
    decode_mfu = {p: users_s[p] * flops_user[p] / peak for p in PATHS}
    same_losses = all(a["losses"] == b["losses"] for a, b in zip(train["old"], train["new"], strict=True))
    same_lists = all(a["items"] == b["items"] for a, b in zip(decode["old"], decode["new"], strict=True))
    overlap = np.mean([len(set(a) & set(b)) / len(a) for old, new in zip(decode["old"], decode["new"], strict=True)
                       for a, b in zip(old["items"], new["items"], strict=True)])

    print("\nexecuted FLOPs: " + "; ".join(
        f"{p} {flops_token[p] / 1e9:.2f} GFLOP per trained token (forward + backward), {flops_user[p] / 1e9:.1f} "
        f"per decoded user" for p in PATHS)
        + f" ({max(config.llm.beams, max(config.eval.ks))} beams, top {max(config.eval.ks)}); "
          f"bf16 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print("\n| path | training tokens/s | train MFU | train peak RSS GiB | decoding users/s | decode MFU | "
          "decode peak RSS GiB |")
    print("|---|---|---|---|---|---|---|")
    names = {"old": "old: " + (" ".join(args.old or OLD)),
             "new": "new: " + (" ".join(args.new) or "the default config")}
    for p in PATHS:
        print(f"| {names[p]} | {rate[p]:.0f} | {mfu[p]:.1%} | {rss[p]:.2f} | {users_s[p]:.2f} | {decode_mfu[p]:.1%} | "
              f"{decode_rss[p]:.2f} |")
    losses = "; ".join(f"{p} " + ", ".join(f"{x:.3f}" for x in train[p][0]["losses"]) for p in PATHS)
    objectives = {configs[p].llm.code_softmax for p in PATHS}
    same = (f"same training losses on both paths: {same_losses}" if len(objectives) == 1 else
            "training losses (the paths' code_softmax differ: each its own normalisation, not comparable)")
    print(f"\n{same} ({losses}); "
          f"identical top-{max(config.eval.ks)} lists: {same_lists} (items in common: {overlap:.1%})")
    if args.profile:
        for what, rows_ in (("training step", train), ("decoding", decode)):
            for p in PATHS:
                shares = rows_[p][0]["profile"]
                print(f"where a {what}'s time goes ({p} path, share of aten self time): "
                      + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))
    print(f"\ntrain speedup {rate['new'] / rate['old']:.2f}x, decode speedup {users_s['new'] / users_s['old']:.2f}x, "
          f"train MFU {mfu['new']:.1%}, peak RSS {rss['new']:.2f} GiB")


if __name__ == "__main__":
    main()
