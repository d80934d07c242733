"""Subset scores with hand-computed values and intervals."""

from __future__ import annotations

import math

import numpy as np

from alignrec.config import EvalConfig
from alignrec.eval.subset import interval, subset_scores
from tests.conftest import make_dataset


def test_interval_of_hits() -> None:
    mean, half = interval(np.array([1.0, 0.0, 0.0, 1.0]))
    assert mean == 0.5 and math.isclose(half, 1.959964 * math.sqrt(1 / 3) / 2)
    assert interval(np.array([1.0])) == (1.0, 0.0)


def test_subset_scores_only_the_given_users() -> None:
    # test targets: u0 -> d, u1 -> e, u2 -> c
    dataset = make_dataset({"u0": ["a", "b", "c", "d"], "u1": ["a", "b", "e"], "u2": ["b", "a", "c"]})
    index = dataset.item_index()
    rankings = {0: [index["d"]], 1: [index["c"], index["e"]], 2: [index["e"]]}
    scores = subset_scores(dataset, rankings, np.array([0, 1]), EvalConfig(ks=[1, 2]))
    assert scores["recall@1"][0] == 0.5 and scores["recall@2"][0] == 1.0
    assert math.isclose(scores["ndcg@2"][0], (1 + 1 / math.log2(3)) / 2)
    assert subset_scores(dataset, rankings, np.array([2]), EvalConfig(ks=[1]))["recall@1"] == (0.0, 0.0)
