"""Collision resolution: a bijection, only the last level moves, at the least cost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alignrec.errors import AlignrecError
from alignrec.tokenize.collisions import collision_stats, resolve_collisions


def test_colliding_items_get_the_cheapest_distinct_last_codes() -> None:
    book = np.array([[0.0], [1.0], [2.0], [10.0]], dtype=np.float32)
    codes = np.array([[0, 0], [0, 0], [0, 0], [1, 0]])
    residual = np.array([[0.1], [0.9], [0.0], [0.0]], dtype=np.float32)
    stats = collision_stats(codes)
    assert stats["collision_rate"] == 0.75 and stats["largest_group"] == 3
    fixed, info = resolve_collisions(codes, residual, book)
    assert sorted(fixed[:3, 1].tolist()) == [0, 1, 2]
    assert fixed[3].tolist() == [1, 0]  # no collision in its prefix: untouched
    def cost(last) -> float:
        return sum(float((residual[i, 0] - book[c, 0]) ** 2) for i, c in enumerate(last))

    best = min(cost(p) for p in itertools.permutations(range(4), 3))
    assert cost(fixed[:3, 1]) == pytest.approx(best)  # 10.0 is never worth taking
    assert 3 not in fixed[:3, 1]
    assert collision_stats(fixed)["collision_rate"] == 0.0 and info["items_moved"] == 2


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_any_input_becomes_a_bijection_with_prefixes_kept(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    codes = np.stack([rng.integers(0, 3, n), rng.integers(0, 2, n), rng.integers(0, size, n)], axis=1)
    prefix_counts = np.unique(codes[:, :2], axis=0, return_counts=True)[1]
    book = rng.normal(size=(size, 3)).astype(np.float32)
    residual = rng.normal(size=(n, 3)).astype(np.float32)
    if prefix_counts.max() > size:
        with pytest.raises(AlignrecError, match="raise tokenize.codebook_size"):
            resolve_collisions(codes, residual, book)
        return
    fixed, _ = resolve_collisions(codes, residual, book)
    assert len(np.unique(fixed, axis=0)) == n
    assert np.array_equal(fixed[:, :2], codes[:, :2])
