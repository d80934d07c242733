"""An export (``alignrec export``) reloaded by plain transformers: does it rank as the run does?

Loads ``EXPORT/llm`` with ``AutoModelForCausalLM`` and ``AutoTokenizer`` only, builds the trie and
the prompts from ``item_codes.json`` alone, decodes fixed seeded users' top-k, and counts the users
whose lists equal the run's LLM's (both in fp32, as exported).

    PYTHONPATH=src .venv/bin/python bench/export_check.py --run runs/ml-100k --export exported --users 20
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from alignrec.backbone import offline
from alignrec.catalog import load_recommender
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.decode import CodeTrie, constrained_beam_search
from alignrec.eval.subset import fixed_users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--export", required=True, type=Path)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dataset = SequenceDataset.load(args.run / "data")
    model = AutoModelForCausalLM.from_pretrained(args.export / "llm").eval()
    tokenizer = AutoTokenizer.from_pretrained(args.export / "llm")
    codes = json.loads((args.export / "llm" / "item_codes.json").read_text())
    names = [re.findall(r"<[^>]+>", codes["items"][str(item)]) for item in dataset.item_ids]
    item_codes = np.array([[int(name.split("_")[1].rstrip(">")) for name in row] for row in names])
    prefixes = [name.split("_")[0] for name in names[0]]
    token_ids = np.array([tokenizer.convert_tokens_to_ids([f"{prefix}_{c}>" for c in range(codes["codebook_size"])])
                          for prefix in prefixes])
    trie = CodeTrie.build(item_codes, token_ids)
    users = fixed_users(dataset, args.users, load_config(args.run / "config.yaml").seed)
    histories = [dataset.sequence(int(user)) for user in users]
    instruction = tokenizer(codes["prompt"]["instruction"], add_special_tokens=False)["input_ids"]
    size = codes["prompt"]["history"]
    prompts = [instruction + tokenizer.convert_tokens_to_ids([t for item in h[-size:] for t in names[item]])
               for h in histories]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    recommender = load_recommender(args.run, "llm", dataset)
    recommender.bf16 = False  # the export is fp32: compare like with like
    found, _ = constrained_beam_search(model, prompts, trie, beams=max(recommender.beams, args.k), k=args.k,
                                       pad_token_id=pad, exclude=histories,
                                       softmax=codes.get("code_softmax", "vocabulary"))
    theirs, _ = recommender.recommend(histories, args.k)
    same = sum(a == b for a, b in zip(found.tolist(), theirs.tolist(), strict=True))
    print(f"identical top-{args.k} lists: {same}/{len(users)} users")


if __name__ == "__main__":
    main()
