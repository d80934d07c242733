"""A tiny ID-only dataset and a matching code artifact for the tiny random Llama."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignrec.config import LLMConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.tokenize.artifacts import TokenizerArtifact, save_artifact, token_names
from tests.conftest import cyclic_dataset

LEVELS, K, HIDDEN = 2, 8, 32


def tiny_artifact(dataset: SequenceDataset, seed: int = 0) -> TokenizerArtifact:
    """Distinct random 2-level codes and aligned rows at the tiny Llama's width."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(K * K, size=dataset.num_items, replace=False)
    codes = np.stack([flat // K, flat % K], axis=1).astype(np.int64)
    return TokenizerArtifact(
        item_ids=np.asarray(dataset.item_ids, dtype=str),
        titles=np.asarray([""] * dataset.num_items),
        codes=codes,
        codebooks=[np.zeros((K, 4), np.float32) for _ in range(LEVELS)],
        quantizer_state={},
        projection={},
        token_embeddings=rng.normal(0, 0.02, (LEVELS * K, HIDDEN)).astype(np.float32),
        tokens=token_names(LEVELS, K),
        report={},
    )


def tiny_llm_config(**overrides: object) -> LLMConfig:
    settings = ["llm.backbone=tiny-random", "llm.bf16=false", "llm.max_steps=8", "llm.log_steps=2",
                "llm.save_steps=4", "llm.eval_steps=4", "llm.eval_users=10", "llm.beams=4", "llm.history=5",
                "llm.batch_size=2", "llm.grad_accum=1", "llm.max_tokens=128", "llm.lora.dropout=0.0"]
    settings += [f"llm.{key}={value}" for key, value in overrides.items()]
    return load_config(None, settings).llm


@pytest.fixture
def cyclic() -> SequenceDataset:
    return cyclic_dataset(num_users=40, num_items=20)


@pytest.fixture
def tiny_tokens(cyclic: SequenceDataset, tmp_path: Path) -> tuple[TokenizerArtifact, Path]:
    artifact = tiny_artifact(cyclic)
    save_artifact(artifact, tmp_path / "tokens")
    return artifact, tmp_path / "tokens"
