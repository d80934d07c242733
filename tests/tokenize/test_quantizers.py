"""RQ-KMeans and RQ-VAE behind one interface: codes, utilisation, determinism, restore."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.errors import AlignrecError
from alignrec.tokenize.metrics import level_stats
from alignrec.tokenize.quantizers import make_quantizer, restore_quantizer
from alignrec.tokenize.residual import balanced_assign, reconstruct
from tests.tokenize.conftest import small_config


def clustered(n: int = 200, dim: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim)) * 4
    return (centres[rng.integers(8, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


@pytest.mark.parametrize("name", ["rqkmeans", "rqvae"])
def test_codes_use_the_codebooks_and_reduce_error_level_by_level(name: str) -> None:
    x = clustered()
    q = make_quantizer(small_config(quantizer=name, levels=3, codebook_size=8), seed=0)
    q.fit(x)
    z = q.latent(x)
    codes, _ = q.encode(x)
    assert codes.shape == (200, 3) and codes.min() >= 0 and codes.max() < 8
    assert all(row["utilisation"] >= 0.75 for row in level_stats(codes, 8))
    errors = [np.linalg.norm(z - reconstruct(codes[:, : l + 1], q.codebooks[: l + 1]), axis=1).mean()
              for l in range(3)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("name", ["rqkmeans", "rqvae"])
def test_same_seed_same_codebooks_and_restore_is_exact(name: str) -> None:
    x = clustered()
    config = small_config(quantizer=name)
    a, b = make_quantizer(config, seed=1), make_quantizer(config, seed=1)
    a.fit(x), b.fit(x)
    for ca, cb in zip(a.codebooks, b.codebooks, strict=True):
        assert np.array_equal(ca, cb)
    other = make_quantizer(config, seed=2)
    other.fit(x)
    assert not np.array_equal(other.codebooks[0], a.codebooks[0])
    restored = restore_quantizer(name, a.settings(), a.codebooks, a.state())
    assert np.array_equal(restored.latent(x), a.latent(x))


def test_rqvae_training_reduces_reconstruction_and_resets_dead_codes() -> None:
    q = make_quantizer(small_config(quantizer="rqvae"), seed=0)
    log = q.fit(clustered())
    assert log["last"]["recon"] < log["first"]["recon"]
    assert log["dead_codes_reset_total"] >= 0 and "dead_codes_reset" in log["last"]


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(AlignrecError, match="codebook_size=64 is larger than the 20 items"):
        make_quantizer(small_config(codebook_size=64), seed=0).fit(clustered(20))
    with pytest.raises(AlignrecError, match="tokenize.quantizer"):
        make_quantizer(small_config(quantizer="pq"), seed=0)


def test_balanced_assignment_respects_capacity_and_prefers_nearest() -> None:
    x = np.array([[0.0], [0.1], [0.2], [5.0]])
    book = np.array([[0.0], [5.0]])
    labels = balanced_assign(x, book)
    assert np.bincount(labels, minlength=2).max() <= 2
    assert labels[3] == 1 and labels[0] == 0  # the far point keeps its own centre


def test_balanced_rqkmeans_keeps_deep_levels_informative() -> None:
    """Skewed residuals: plain k-means crowds most items into one deep code, balanced does not."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(180, 6)) * 0.05, rng.normal(size=(20, 6)) * 5]).astype(np.float32)
    ppl = {}
    for balanced in (False, True):
        q = make_quantizer(small_config(levels=2, codebook_size=16, balanced=balanced), seed=0)
        q.fit(x)
        codes, _ = q.encode(x)
        ppl[balanced] = [row["perplexity"] for row in level_stats(codes, 16)]
        if balanced:
            assert all(np.bincount(codes[:, l]).max() <= -(-200 // 16) for l in range(2))
    assert ppl[True][0] > 1.5 * ppl[False][0]
    assert min(ppl[True]) > 12
