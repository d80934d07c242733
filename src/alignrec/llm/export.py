"""The fine-tuned LLM as a standard Hugging Face folder: plain ``transformers`` loads it offline.

The LoRA adapter is merged into the backbone; the tokenizer gains the code tokens at
the ids the model was trained with; ``item_codes.json`` maps every item to its code
tokens and says how a prompt is written; a model card (``README.md``) gives the data,
the settings and the run's metrics. Decoding an export with a trie over
``item_codes.json`` (``alignrec.decode``, or any constrained beam search) gives the
run's lists when each code is scored as training normalised it: ``code_softmax`` in
``item_codes.json`` says ``level`` (a log-softmax over that level's codes only) or
``vocabulary`` (over all the logits). A run trained with ``llm.code_prior`` adds a fixed bias to the code
tokens' logits that no Hugging Face config can hold: it is saved as
``code_prior.json`` and the card says how to add it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from alignrec.config import load_config, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.io import atomic_open, read_json, write_json
from alignrec.llm.build import ADAPTER, build_llm, check_artifact_matches
from alignrec.llm.prior import code_log_prior, training_counts
from alignrec.llm.tasks.sequential import TEMPLATES
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import load_artifact

ITEM_CODES = "item_codes.json"
PRIOR_FILE = "code_prior.json"


def export_model(run: RunDir, dataset: SequenceDataset, out: Path) -> list[Path]:
    """Write the run's LLM to ``out`` (weights, tokenizer with the code tokens, item codes, model card)."""
    config = load_config(run.config)
    artifact = load_artifact(run.tokens)
    check_artifact_matches(dataset, artifact, run.tokens)
    built = build_llm(config.llm, artifact, dataset, config.seed, run.model("llm").file(ADAPTER), "cpu")
    if built.tokenizer is None:
        raise AlignrecError(f"{run.root}: llm.backbone={config.llm.backbone} has no Hugging Face tokenizer to "
                            "export; export a run fine-tuned from smollm2, a .gguf file or a model folder")
    tokenizer = built.tokenizer
    if len(tokenizer) != built.vocab.base_vocab:
        raise AlignrecError(f"{config.llm.backbone}: its tokenizer has {len(tokenizer)} tokens and the model "
                            f"{built.vocab.base_vocab} rows; the code tokens' ids would not match")
    tokenizer.add_tokens(list(built.vocab.names), special_tokens=False)
    if tokenizer.convert_tokens_to_ids(built.vocab.names[0]) != built.vocab.base_vocab:
        raise AlignrecError("the tokenizer gave the code tokens other ids than the model's rows")
    out.mkdir(parents=True, exist_ok=True)
    built.model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    names = np.asarray(built.vocab.names)[built.vocab.item_token_ids(artifact.codes) - built.vocab.base_vocab]
    write_json(out / ITEM_CODES, {
        "levels": built.vocab.levels, "codebook_size": built.vocab.codebook_size,
        "code_softmax": built.recommender.softmax,
        "prompt": {"instruction": TEMPLATES[0], "history": config.llm.history,
                   "history_titles": config.llm.history_titles},
        "items": {str(item): "".join(row) for item, row in zip(dataset.item_ids, names.tolist(), strict=True)},
    })
    written = [out / "model.safetensors", out / "config.json", out / ITEM_CODES, out / "README.md"]
    if config.llm.code_prior:
        prior = code_log_prior(artifact.codes, training_counts(dataset), artifact.codebook_size)
        write_json(out / PRIOR_FILE, {"token_ids": built.vocab.token_ids.ravel().tolist(),
                                      "bias": (config.llm.code_prior * prior.ravel()).tolist()})
        written.append(out / PRIOR_FILE)
    with atomic_open(out / "README.md") as handle:
        handle.write(model_card(run, dataset, config, built.source, built.recommender.softmax))
    return written


def softmax_line(softmax: str) -> str:
    """How a code's log-probability is normalised, as the model was trained (``llm.code_softmax``)."""
    if softmax == "level":
        return ("Score each code token by a log-softmax over its level's codes only (the trie's tokens at that "
                "position, `item_codes.json`'s `code_softmax: level`), as training did; `alignrec.decode`'s "
                "search takes `softmax=\"level\"`.")
    return "Score each code token by a log-softmax over the whole vocabulary, as training did."


def model_card(run: RunDir, dataset: SequenceDataset, config: Any, source: dict[str, Any], built_softmax: str) -> str:
    """What the folder holds, where it came from, what it scored and how to decode it."""
    metrics_path = run.model("llm").metrics
    metrics = read_json(metrics_path) if metrics_path.is_file() else {}
    scored = metrics.get("metrics", {})
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in scored.items() if "@" in name and "coverage" not in name)
    settings = "\n".join(f"| llm.{key} | `{value}` |" for key, value in to_dict(config.llm).items()
                         if not isinstance(value, dict))
    prior = (f"\nThe model was trained with `llm.code_prior: {config.llm.code_prior}`: add `{PRIOR_FILE}`'s `bias` "
             "to the logits at its `token_ids` before the softmax at every code position, as training did.\n"
             if config.llm.code_prior else "")
    return f"""---
library_name: transformers
tags: [recommendation, generative-retrieval, alignrec]
---
# alignrec LLM recommender: {dataset.name}

A causal LM ({source.get('spec', 'backbone')}) fine-tuned by alignrec on alignment tasks over
{dataset.name} ({dataset.num_users:,} users, {dataset.num_items:,} items, {dataset.num_interactions:,}
interactions). Each item is {config.tokenize.levels} code tokens (`{ITEM_CODES}`); the model writes
the next item's codes after a history prompt.

## Prompt and decoding

The instruction `{TEMPLATES[0]}` (tokenized without special tokens), then the last
{config.llm.history} history items' code tokens, oldest first; decode
{config.tokenize.levels} tokens with a beam search kept to the trie of the items' code sequences
(every result is a real item). {softmax_line(built_softmax)}
{prior}
## Test metrics (leave-one-out, full ranking, {metrics.get('num_users', 0):,} users)

| metric | value |
|---|---|
{rows}

## Settings

| setting | value |
|---|---|
{settings}
"""
