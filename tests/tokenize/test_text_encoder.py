"""Text embeddings: unit vectors, batched, cached by content."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.tokenize.text_encoder import encode_texts


def test_unit_vectors_batched_and_cached(tiny_text_model, private_cache) -> None:
    texts = ["guitar string rock 1", "piano key jazz 2", "drum stick beat 3"]
    first, info = encode_texts(texts, batch_size=2, model_dir=tiny_text_model)
    assert first.shape == (3, 16) and not info["cached"]
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again, info = encode_texts(texts, batch_size=3, model_dir=tiny_text_model)
    assert info["cached"] and np.array_equal(first, again)
    # batching does not change the vectors (padding is masked out of the mean)
    single, _ = encode_texts(texts[:1], batch_size=1, model_dir=tiny_text_model)
    assert np.allclose(single[0], first[0], atol=1e-5)
    assert len(list((private_cache / "text").glob("*.npy"))) == 2


@pytest.mark.integration
def test_packaged_minilm_puts_similar_titles_closer() -> None:
    vectors, _ = encode_texts(["Toy Story 2", "Toy Story", "Schindler's List"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
