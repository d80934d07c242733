"""Code tokens appended to the vocabulary: ids, initial rows, tied and untied heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignrec.backbone import tiny_random_llama
from alignrec.errors import AlignrecError
from alignrec.llm.vocab import add_code_tokens, ties_embeddings

LEVELS, K = 2, 3
NAMES = [f"<{'ab'[level]}_{code}>" for level in range(LEVELS) for code in range(K)]


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_aligned_rows_land_at_their_ids_in_both_matrices(tied: bool) -> None:
    model = tiny_random_llama(0, tied=tied)
    old_rows = model.get_input_embeddings().weight.detach().clone()
    aligned = np.arange(LEVELS * K * 32, dtype=np.float32).reshape(LEVELS * K, 32) / 100
    vocab = add_code_tokens(model, NAMES, LEVELS, K, "aligned", aligned)
    assert vocab.base_vocab == old_rows.shape[0]
    assert vocab.token_ids.tolist() == [[259, 260, 261], [262, 263, 264]]
    assert vocab.item_token_ids(np.array([[2, 0]])).tolist() == [[261, 262]]
    assert vocab.name(263) == "<b_1>"
    embeddings = model.get_input_embeddings().weight
    assert torch.equal(embeddings[:259], old_rows)
    assert torch.allclose(embeddings[259:], torch.from_numpy(aligned))
    assert torch.allclose(model.get_output_embeddings().weight[259:], torch.from_numpy(aligned))
    assert ties_embeddings(model) == tied
    logits = model(torch.tensor([[5, 262]])).logits
    assert logits.shape[-1] == 259 + LEVELS * K


def test_random_rows_follow_the_vocabulary_statistics() -> None:
    model = tiny_random_llama(0)
    reference = model.get_input_embeddings().weight.detach().clone()
    names = [f"<a_{i}>" for i in range(400)]
    add_code_tokens(model, names, 1, 400, "random", seed=1)
    rows = model.get_input_embeddings().weight[259:].detach()
    assert torch.allclose(rows.mean(0), reference.mean(0), atol=0.01)
    assert torch.allclose(rows.std(0), reference.std(0), rtol=0.2)


def test_a_wrong_shape_says_which_backbone_to_tokenize_with() -> None:
    with pytest.raises(AlignrecError, match="tokenize.align.llm"):
        add_code_tokens(tiny_random_llama(0), NAMES, LEVELS, K, "aligned", np.zeros((LEVELS * K, 7), np.float32))
    with pytest.raises(AlignrecError, match="aligned, random"):
        add_code_tokens(tiny_random_llama(0), NAMES, LEVELS, K, "zeros")
