"""Constrained decoding speed: our beam search vs transformers' generate + prefix_allowed_tokens_fn.

The peer path (LC-Rec, MiniOneRec) expands every prompt to ``beams`` copies before the
prefill and calls a Python function per beam per step. Both searches below run on the
same model, the same prompts (a short instruction + the code tokens of ``--history``
random items) and the same trie, batch by batch in turn so that load on the machine
hits both alike. Prints users/s of each, the ratio, and how many users got identical
top-k lists (items in the same order).

    nice -n 19 env OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/decode.py \\
        --model smollm2 --tokens runs/ml-100k/tokens --users 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from alignrec.backbone import load_causal_lm
from alignrec.decode import CodeTrie, constrained_beam_search
from alignrec.decode.reference import generate_top_k
from alignrec.tokenize.artifacts import load_artifact

INSTRUCTION = "The user has interacted with these items, in order:"
QUESTION = " Which item will the user interact with next?"


def catalogue(args: argparse.Namespace) -> tuple[np.ndarray, int]:
    """Item codes [N, L] and the codebook size: a tokenizer's output, or random distinct codes."""
    if args.tokens is not None:
        artifact = load_artifact(args.tokens)
        return artifact.codes, artifact.codebook_size
    rng = np.random.default_rng(args.seed)
    flat = rng.choice(args.codebook_size**args.levels, args.items, replace=False)
    return np.array(np.unravel_index(flat, (args.codebook_size,) * args.levels)).T, args.codebook_size


def add_code_tokens(model: torch.nn.Module, levels: int, size: int) -> np.ndarray:
    """Append levels * size new tokens (random rows); return their ids as [levels, size]."""
    base = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(base + levels * size, mean_resizing=False)
    return base + np.arange(levels * size).reshape(levels, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="tiny-random, smollm2, or a model folder / .gguf")
    parser.add_argument("--tokens", help="a tokenizer output folder (codes.npz); default: random codes")
    parser.add_argument("--items", type=int, default=1682, help="catalogue size when --tokens is not given")
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--history", type=int, default=20, help="items per prompt")
    parser.add_argument("--beams", type=int, default=20)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    codes, size = catalogue(args)
    levels = codes.shape[1]
    llm = load_causal_lm(args.model, seed=args.seed)
    model, encode, pad = llm.model.eval(), llm.encode, llm.pad_id
    trie = CodeTrie.build(codes, add_code_tokens(model, levels, size))

    rng = np.random.default_rng(args.seed)
    head, tail = encode([INSTRUCTION, QUESTION])
    prompts = []
    for _ in range(args.users):
        history = rng.choice(trie.num_items, min(args.history, trie.num_items), replace=False)
        prompts.append(head + [t for item in history for t in trie.item_tokens(int(item))] + tail)
    print(f"model {args.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; "
          f"{trie.num_items} items x {levels} levels x {size} codes; {args.users} users, prompts "
          f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens; beams {args.beams}, k {args.k}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")

    def ours(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        return constrained_beam_search(model, batch, trie, beams=args.beams, k=args.k, pad_token_id=pad,
                                       batch_size=args.batch_size)

    def theirs(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        return generate_top_k(model, batch, trie, beams=args.beams, k=args.k, pad_token_id=pad)

    warm = prompts[: min(2, len(prompts))]  # first calls pay one-off set-up costs
    ours(warm), theirs(warm)
    seconds = {"ours": 0.0, "generate": 0.0}
    found = {"ours": [], "generate": []}
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start : start + args.batch_size]
        for name, search in (("ours", ours), ("generate", theirs)):
            began = time.perf_counter()
            found[name].append(search(batch))
            seconds[name] += time.perf_counter() - began
    ours_items, ours_scores = (np.concatenate(part) for part in zip(*found["ours"], strict=True))
    ref_items, ref_scores = (np.concatenate(part) for part in zip(*found["generate"], strict=True))

    identical = (ours_items == ref_items).all(axis=1)
    same_set = np.array([set(a) == set(b) for a, b in zip(ours_items.tolist(), ref_items.tolist(), strict=True)])
    invalid = {name: float(((items < 0) | (items >= trie.num_items)).mean())
               for name, items in (("ours", ours_items), ("generate", ref_items))}
    rate = {name: args.users / seconds[name] for name in seconds}
    print(f"ours:     {rate['ours']:8.2f} users/s ({seconds['ours']:.1f} s)")
    print(f"generate: {rate['generate']:8.2f} users/s ({seconds['generate']:.1f} s)")
    print(f"ratio ours/generate: {rate['ours'] / rate['generate']:.1f}x")
    print(f"identical top-{args.k} lists: {identical.mean():.1%} of users ({identical.sum()}/{args.users}); "
          f"same item sets: {same_set.mean():.1%}; max |score difference| on identical lists "
          f"{np.abs(ours_scores - ref_scores)[identical[:, None] & (ours_items >= 0)].max(initial=0.0):.2e}")
    print(f"invalid items returned: ours {invalid['ours']:.1%}, generate {invalid['generate']:.1%}")


if __name__ == "__main__":
    main()
