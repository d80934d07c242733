"""Utilisation, perplexity and the text-neighbour check on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.tokenize.metrics import level_stats, neighbour_prefix_agreement, published_comparison


def test_uniform_codes_have_full_utilisation_and_perplexity_k() -> None:
    codes = np.stack([np.arange(32) % 8, np.zeros(32, dtype=int)], axis=1)
    uniform, constant = level_stats(codes, 8)
    assert uniform["utilisation"] == 1.0 and uniform["perplexity"] == pytest.approx(8.0)
    assert constant["utilisation"] == 1 / 8 and constant["perplexity"] == pytest.approx(1.0)


def test_neighbour_agreement_is_one_when_codes_follow_clusters_and_chance_when_random() -> None:
    rng = np.random.default_rng(0)
    cluster = np.repeat(np.arange(4), 30)
    text = np.eye(4)[cluster] * 5 + rng.normal(size=(120, 4)) * 0.1
    aligned = neighbour_prefix_agreement(text, cluster)
    assert aligned["observed"] == 1.0
    assert aligned["chance"] == pytest.approx(4 * 30 * 29 / (120 * 119))
    shuffled = neighbour_prefix_agreement(text, rng.permutation(cluster))
    assert abs(shuffled["observed"] - shuffled["chance"]) < 0.1


def test_published_codes_are_parsed_and_compared() -> None:
    ids = np.array(["0", "1", "2", "3"])
    published = {"0": ["<a_1>", "<b_0>"], "1": ["<a_1>", "<b_0>"], "2": ["<a_0>", "<b_1>"], "3": ["<a_0>", "<b_2>"]}
    ours = np.array([[5, 0], [5, 1], [7, 0], [7, 1]])
    result = published_comparison(published, ids, ours)
    assert result is not None
    assert result["collisions"]["collision_rate"] == 0.5
    assert result["first_level_nmi_with_ours"] == pytest.approx(1.0)
    assert published_comparison({"0": ["x"]}, ids, ours) is None
