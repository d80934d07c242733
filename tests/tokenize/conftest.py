"""Tiny synthetic inputs for the tokenizer: a catalogue in four topics, a tiny BERT, a tiny Llama."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignrec.backbone import Backbone, load_backbone
from alignrec.config import TokenizeConfig
from alignrec.data.dataset import SequenceDataset
from tests.conftest import make_dataset

TOPICS = ["guitar string rock", "piano key jazz", "drum stick beat", "violin bow classic"]
NUM_ITEMS = 96


def topic_of(item: int) -> int:
    return item % len(TOPICS)


@pytest.fixture
def catalogue() -> SequenceDataset:
    """96 items titled by topic; users walk through items of one topic."""
    text = {str(i): {"title": f"{TOPICS[topic_of(i)]} {i}", "genres": TOPICS[topic_of(i)].split()[0]}
            for i in range(NUM_ITEMS)}
    rng = np.random.default_rng(0)
    sequences = {}
    for user in range(60):
        topic = user % len(TOPICS)
        pool = [i for i in range(NUM_ITEMS) if topic_of(i) == topic]
        sequences[str(user)] = [str(i) for i in rng.choice(pool, size=6, replace=False)]
    # every item appears at least once
    sequences["all"] = [str(i) for i in range(NUM_ITEMS)]
    return make_dataset(sequences, item_text=text, name="catalogue")


def write_cf(dataset: SequenceDataset, folder: Path, dim: int = 16, seed: int = 0) -> Path:
    """An item_embeddings.npz like SASRec's: items of one topic cluster together."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(TOPICS), dim)) * 3
    topics = np.array([topic_of(int(i)) if str(i).isdigit() else 0 for i in dataset.item_ids])
    vectors = centres[topics] + rng.normal(size=(dataset.num_items, dim))
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "item_embeddings.npz", embeddings=vectors.astype(np.float32),
             item_ids=np.asarray(dataset.item_ids, dtype=str))
    return folder


@pytest.fixture
def sasrec_dir(catalogue: SequenceDataset, tmp_path: Path) -> Path:
    return write_cf(catalogue, tmp_path / "sasrec")


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT with a WordPiece vocabulary of the catalogue's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    words = sorted({w for t in TOPICS for w in t.split()} | {str(i) for i in range(NUM_ITEMS)}
                   | {"genres", ":", ";", "rock", "jazz"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llm() -> Backbone:
    return load_backbone("tiny-random", seed=0)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own $ALIGNREC_CACHE, so cache hits are the test's own."""
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small_config(**overrides: object) -> TokenizeConfig:
    config = TokenizeConfig(levels=3, codebook_size=8, kmeans_iters=30)
    config.align.llm = "tiny-random"
    config.align.steps = 60
    config.align.batch_size = 64
    config.rqvae.epochs = 30
    config.rqvae.batch_size = 32
    config.rqvae.hidden = [32]
    config.rqvae.latent_dim = 8
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny tensors: one intra-op thread avoids thread hand-off costing more than the math."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
