import numpy as np
import torch

from alignrec.recommender import NO_ITEM, top_k


def test_top_k_masks_each_rows_own_history() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5], [0.9, 0.8, 0.1, 0.5]])
    items, values = top_k(scores, [np.array([0]), np.array([1, 3])], 2)
    assert items.tolist() == [[1, 3], [0, 2]]
    assert np.allclose(values, [[0.8, 0.5], [0.9, 0.1]])


def test_top_k_keeps_the_history_when_told() -> None:
    scores = torch.tensor([[0.1, 0.3, 0.2]])
    items, _ = top_k(scores, [np.array([1])], 2, exclude_history=False)
    assert items.tolist() == [[1, 2]]


def test_top_k_pads_with_no_item_when_fewer_are_left() -> None:
    scores = torch.tensor([[0.1, 0.3, 0.2]])
    items, values = top_k(scores, [np.array([1, 2])], 3)
    assert items.tolist() == [[0, NO_ITEM, NO_ITEM]]
    assert values[0, 0] == np.float32(0.1) and np.isneginf(values[0, 1:]).all()
    items, values = top_k(scores, [np.array([])], 5)  # k above the item count
    assert items.tolist() == [[1, 2, 0, NO_ITEM, NO_ITEM]]
