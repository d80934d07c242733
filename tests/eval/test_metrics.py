"""Metric values computed by hand."""

import math

import numpy as np
import pytest

from alignrec.eval.metrics import coverage_at, mrr, ndcg_at, recall_at, target_rank


def test_target_rank_is_one_based_and_zero_when_absent() -> None:
    assert target_rank([7, 3, 9], 7) == 1
    assert target_rank([7, 3, 9], 9) == 3
    assert target_rank([7, 3, 9], 4) == 0
    assert target_rank([], 4) == 0


def test_recall_counts_hits_within_k() -> None:
    ranks = np.array([1, 3, 0, 11])
    assert recall_at(ranks, 1) == pytest.approx(1 / 4)
    assert recall_at(ranks, 3) == pytest.approx(2 / 4)
    assert recall_at(ranks, 10) == pytest.approx(2 / 4)
    assert recall_at(ranks, 20) == pytest.approx(3 / 4)


def test_ndcg_by_hand() -> None:
    # ranks 1, 3, miss, 11: gains 1, 1/log2(4) = 0.5, 0, (1/log2(12) only within k >= 11)
    ranks = np.array([1, 3, 0, 11])
    assert ndcg_at(ranks, 10) == pytest.approx((1 + 0.5) / 4)
    assert ndcg_at(ranks, 20) == pytest.approx((1 + 0.5 + 1 / math.log2(12)) / 4)
    assert ndcg_at(ranks, 2) == pytest.approx(1 / 4)


def test_mrr_by_hand() -> None:
    assert mrr(np.array([1, 3, 0, 4])) == pytest.approx((1 + 1 / 3 + 0 + 1 / 4) / 4)


def test_empty_inputs_give_zero() -> None:
    assert recall_at(np.array([]), 10) == 0.0
    assert ndcg_at(np.array([]), 10) == 0.0
    assert mrr(np.array([])) == 0.0


def test_coverage_ignores_invalid_ids_and_cuts_at_k() -> None:
    rankings = [[0, 1, 2], [1, -1, 3]]
    assert coverage_at(rankings, 1, 10) == pytest.approx(2 / 10)  # {0, 1}
    assert coverage_at(rankings, 3, 10) == pytest.approx(4 / 10)  # {0, 1, 2, 3}
