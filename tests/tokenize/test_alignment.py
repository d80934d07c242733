"""The projection into the LLM space: the loss falls, titles become retrievable, norms match."""

from __future__ import annotations

import numpy as np

from alignrec.config import AlignConfig
from alignrec.tokenize.alignment import align_codes


def toy_codes(n: int = 64, levels: int = 3, size: int = 8, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    books = [rng.normal(size=(size, dim)).astype(np.float32) for _ in range(levels)]
    codes = np.stack([rng.permutation(np.arange(n) % size) for _ in range(levels)], axis=1)
    return books, codes


def test_with_titles_the_info_nce_falls_and_titles_become_retrievable(tiny_llm) -> None:
    books, codes = toy_codes()
    words = ["rock", "jazz", "folk", "punk", "soul", "funk", "blues", "disco"]
    titles = [f"{words[a]} {words[b]}" for a, b, _ in codes]  # the text follows the codes
    result = align_codes(books, codes, tiny_llm, titles, AlignConfig(steps=150, batch_size=64), seed=0)
    curve = result.log["curve"]
    assert curve[-1]["info_nce"] < 0.7 * curve[0]["info_nce"]
    assert curve[-1]["anchor"] < curve[0]["anchor"]
    retrieval = result.log["title_retrieval"]
    trained, held = retrieval["after"]["trained"], retrieval["after"]["held_out"]
    assert trained["top10"] > retrieval["before"]["trained"]["top10"] and trained["top10"] > 3 * 10 / 58
    # 6 items never seen by the loss: their titles are found through codes shared with others
    assert result.log["items_held_out"] == 6 and held["top1"] > 2 * held["chance_top1"]
    assert result.token_embeddings.shape == (3 * 8, tiny_llm.embeddings.shape[1])
    # token (l, k) really is the projection of codeword k of level l
    l, k = 2, 5
    p = result.projection
    expected = p["output_shift"] + p["output_scale"] * (books[l][k] / p["input_scale"][l] @ p["weight"][l] + p["bias"][l])
    assert np.allclose(result.token_embeddings[l * 8 + k], expected, atol=1e-5)


def test_id_only_anchor_matches_the_llm_embedding_distribution(tiny_llm) -> None:
    books, codes = toy_codes()
    books = [b * 50 for b in books]  # far off the LLM's scale at the start
    result = align_codes(books, codes, tiny_llm, None, AlignConfig(steps=200), seed=0)
    assert "ID-only" in result.log["objective"] and "title_retrieval" not in result.log
    llm_norm = result.log["llm_mean_norm"]
    assert abs(result.log["token_mean_norm"] - llm_norm) < 0.1 * llm_norm
    assert result.log["curve"][-1]["anchor"] < 0.5 * result.log["curve"][0]["anchor"]


def test_same_seed_same_embeddings(tiny_llm) -> None:
    books, codes = toy_codes()
    titles = [f"t{i}" for i in range(64)]
    a = align_codes(books, codes, tiny_llm, titles, AlignConfig(steps=20), seed=5)
    b = align_codes(books, codes, tiny_llm, titles, AlignConfig(steps=20), seed=5)
    assert np.array_equal(a.token_embeddings, b.token_embeddings)
