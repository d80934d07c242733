"""The shared LLM loader: tiny random Llama, spec errors, and the real packaged SmolLM2."""

from __future__ import annotations

import os

import pytest
import torch

from alignrec.backbone import ByteTokenizer, load_backbone
from alignrec.errors import AlignrecError


def test_tiny_random_backbone_is_seeded_and_covers_its_tokenizer() -> None:
    a, b = load_backbone("tiny-random", seed=3), load_backbone("tiny-random", seed=3)
    assert torch.equal(a.embeddings, b.embeddings)
    assert not torch.equal(a.embeddings, load_backbone("tiny-random", seed=4).embeddings)
    ids = a.encode(["héllo", ""])
    assert ids[1] == [] and len(ids[0]) == len("héllo".encode())
    assert max(ids[0]) < a.embeddings.shape[0]
    assert a.source["vocab"] == 256 + ByteTokenizer.specials


@pytest.mark.parametrize("spec", ["/no/such/model.gguf", "/no/such/folder"])
def test_bad_spec_names_the_setting(spec: str) -> None:
    with pytest.raises(AlignrecError, match="tokenize.align.llm"):
        load_backbone(spec)


@pytest.mark.integration
def test_packaged_smollm2_loads_offline_and_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path))
    backbone = load_backbone("smollm2")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert tuple(backbone.embeddings.shape) == (49152, 576)
    assert torch.isfinite(backbone.embeddings).all()
    assert (tmp_path / "llm" / backbone.source["sha256"] / "config.json").is_file()
    ids = backbone.encode(["Toy Story"])[0]
    assert 1 <= len(ids) <= 4
    again = load_backbone("smollm2")  # from the cached HF folder
    assert torch.equal(again.embeddings, backbone.embeddings)
