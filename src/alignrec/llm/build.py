"""Building the LLM recommender: backbone -> code-token vocabulary -> prompt encoder -> trie -> recommender.

One build for both uses: training wraps the backbone in fresh LoRA adapters (and
validates through the recommender it builds), loading a finished run reads the
trained adapter and merges it for speed. Either way the prompts are those the
model is trained on, titles included where ``llm.history_titles`` puts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignrec.backbone import load_causal_lm
from alignrec.config import LLMConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split
from alignrec.decode.trie import CodeTrie
from alignrec.device import resolve_device, use_bf16
from alignrec.errors import AlignrecError
from alignrec.io import read_json
from alignrec.llm import attention
from alignrec.llm.compiled import compile_elementwise
from alignrec.llm.encoding import ExampleEncoder
from alignrec.llm.fused_lora import fuse_lora_updates
from alignrec.llm.head import code_head, skip_head_without_positions
from alignrec.llm.precision import norms_emit_autocast_dtype, store_linears_in_bf16
from alignrec.llm.prior import attach_prior, code_log_prior, training_counts
from alignrec.llm.recommender import LLMRecommender
from alignrec.llm.tasks import TASKS
from alignrec.llm.tasks.metadata import ItemFacts
from alignrec.llm.tasks.sequential import prompt_title
from alignrec.llm.vocab import CodeVocabulary, add_code_tokens, ties_embeddings
from alignrec.rundir import RunDir
from alignrec.tokenize.artifacts import TokenizerArtifact, load_artifact

TASK_NAMES = tuple(TASKS)
ADAPTER = "model"
"""The LLM folder's trained part: LoRA + code rows (peft's files) and ``vocab.json``."""
VOCAB = "vocab.json"


@dataclass
class LLMBuild:
    model: torch.nn.Module
    """Training: a peft model (LoRA adapters + trainable code rows); loaded: the merged model."""
    vocab: CodeVocabulary
    encoder: ExampleEncoder
    pad_id: int
    source: dict[str, Any]
    """Where the backbone came from (recorded with the adapter)."""
    recommender: LLMRecommender
    tokenizer: Any = None
    """The backbone's Hugging Face tokenizer, without the code tokens (None for ``tiny-random``)."""


def check_artifact_matches(dataset: SequenceDataset, artifact: TokenizerArtifact, tokens_dir: Path) -> None:
    if len(artifact.item_ids) != dataset.num_items or any(
        str(a) != str(b) for a, b in zip(artifact.item_ids, dataset.item_ids, strict=True)
    ):
        raise AlignrecError(
            f"{tokens_dir}: its items are not the dataset's ({len(artifact.item_ids)} vs {dataset.num_items}); "
            "tokenize this prepared dataset with `alignrec tokenize --data DIR ...`"
        )


def add_prior(
    model: torch.nn.Module, vocab: CodeVocabulary, config: LLMConfig, artifact: TokenizerArtifact,
    dataset: SequenceDataset,
) -> None:
    """``llm.code_prior``'s bias on the code tokens, the same for training (on the peft model) and for a
    loaded run (on the merged one)."""
    if config.code_prior:
        prior = code_log_prior(artifact.codes, training_counts(dataset), artifact.codebook_size)
        attach_prior(model, vocab, prior, config.code_prior)


def build_llm(
    config: LLMConfig, artifact: TokenizerArtifact, dataset: SequenceDataset, seed: int,
    adapter: Path | None = None, device: torch.device | str = "cpu", decode_only: bool = False,
) -> LLMBuild:
    """The recommender to train (``adapter`` None: new LoRA, code rows initialised by ``llm.token_init``)
    or the trained one in ``adapter`` (merged, in eval mode, on ``device``, which also decides
    ``llm.bf16: auto``; ``decode_only``: with bf16 on, its linear weights stored in bf16, see
    :mod:`alignrec.llm.precision`)."""
    llm = load_causal_lm(config.backbone, seed)
    bf16 = use_bf16(config.bf16, device)
    if adapter is None:
        from peft import LoraConfig, get_peft_model

        vocab = add_code_tokens(llm.model, artifact.tokens, artifact.levels, artifact.codebook_size,
                                config.token_init, artifact.token_embeddings, seed)
        new_rows = list(range(vocab.base_vocab, vocab.base_vocab + vocab.size))
        # Tied heads follow the embedding adapter automatically; an untied head needs its own rows.
        token_rows: list[int] | dict[str, list[int]] = (
            new_rows if ties_embeddings(llm.model) else {"embed_tokens": new_rows, "lm_head": new_rows}
        )
        lora = LoraConfig(
            r=config.lora.rank, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
            target_modules=config.lora.target_modules, trainable_token_indices=token_rows, task_type="CAUSAL_LM",
        )
        model = get_peft_model(llm.model, lora)
        if config.fused_lora:
            fuse_lora_updates(model)
        if config.compile_elementwise:
            compile_elementwise(model)
        if config.segment_attention:
            attention.register()
            llm.model.set_attn_implementation(attention.IMPLEMENTATION)
        softmax = config.code_softmax
    else:
        from peft import PeftModel

        if not (adapter / VOCAB).is_file():
            raise AlignrecError(f"{adapter.parent}: no fine-tuned model ({ADAPTER}/{VOCAB}); "
                                "train it with `alignrec train llm`")
        saved = read_json(adapter / VOCAB)
        # The code rows' starting values do not matter: the adapter holds the trained ones.
        vocab = add_code_tokens(llm.model, artifact.tokens, artifact.levels, artifact.codebook_size, "random",
                                seed=seed)
        if (vocab.base_vocab, vocab.levels, vocab.codebook_size) != (
            saved["base_vocab"], saved["levels"], saved["codebook_size"]
        ):
            raise AlignrecError(f"{adapter / VOCAB}: made with another backbone or tokenizer than llm.backbone / --tokens")
        softmax = saved.get("code_softmax", "vocabulary")  # as it was trained; earlier runs: the vocabulary
        model = PeftModel.from_pretrained(llm.model, adapter).merge_and_unload().eval().to(device)
        if decode_only and bf16:
            store_linears_in_bf16(model)
    if config.norm_casts:
        norms_emit_autocast_dtype(model)
    skip_head_without_positions(model)
    add_prior(model, vocab, config, artifact, dataset)
    encoder = ExampleEncoder(llm.encode, vocab.item_token_ids(artifact.codes), llm.eos_id, TASK_NAMES)
    trie = CodeTrie.build(artifact.codes, vocab.token_ids)
    recommender = LLMRecommender(model, encoder, trie, llm.pad_id, config.history, config.beams,
                                 config.decode_batch_size, bf16,
                                 prompt_title(ItemFacts(dataset), config.history_titles), config.decode_shared_cache,
                                 softmax, code_head(model, vocab) if softmax == "level" else None)
    return LLMBuild(model, vocab, encoder, llm.pad_id, llm.source, recommender, llm.tokenizer)


def model_files(run: RunDir) -> list[Path]:
    """The files that define a fine-tuned LLM: its adapter and the item codes it decodes."""
    return [run.model("llm").file(ADAPTER) / "adapter_model.safetensors", run.tokens / "codes.json"]


def load_recommender(run: RunDir, dataset: SequenceDataset, horizon: Split | None = None) -> LLMRecommender:
    """The catalog's loader: the run's fine-tuned LLM, built as it was trained (``config.yaml``, ``tokens/``)."""
    config = load_config(run.config)
    artifact = load_artifact(run.tokens)
    check_artifact_matches(dataset, artifact, run.tokens)
    return build_llm(config.llm, artifact, dataset, config.seed, run.model("llm").file(ADAPTER),
                     resolve_device(config.device), decode_only=True).recommender
