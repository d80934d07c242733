import numpy as np
import torch

from alignrec.eval.ranking import INVALID, clean_ranking, top_n


def test_clean_ranking_dedups_keeping_first_and_excludes_history() -> None:
    assert clean_ranking([5, 3, 5, 2, 3, 9], excluded=[2]) == [5, 3, 9]


def test_clean_ranking_keeps_invalid_ids_in_place_as_misses() -> None:
    assert clean_ranking([INVALID, 4, INVALID, 4, 1]) == [INVALID, 4, INVALID, 1]


def test_clean_ranking_cuts_to_length_after_cleaning() -> None:
    assert clean_ranking([1, 1, 2, 3, 4], excluded=[2], length=2) == [1, 3]


def test_top_n_masks_each_rows_own_history() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.9, 0.8, 0.1, 0.5]])
    best = top_n(scores, [np.array([0]), np.array([1, 3])], 2)
    assert best.tolist() == [[1, 3], [0, 2]]


def test_top_n_without_exclusion() -> None:
    scores = torch.tensor([[0.1, 0.3, 0.2]])
    assert top_n(scores, None, 5).tolist() == [[1, 2, 0]]
