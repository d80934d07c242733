import numpy as np

from alignrec.models.mostpop import MostPop
from tests.conftest import make_dataset


def test_counts_only_what_is_visible_before_the_target() -> None:
    # Test targets (x, x) must not be counted when predicting test; they would make x the top item.
    ds = make_dataset({"u1": ["a", "b", "c", "x"], "u2": ["a", "c", "b", "x"], "u3": ["x", "y"]})
    index = ds.item_index()
    test = MostPop.fit(ds, "test")
    assert test.counts[index["x"]] == 1  # only u3's (train-only) x
    assert test.counts[index["a"]] == 2 and test.counts[index["b"]] == 2
    valid = MostPop.fit(ds, "valid")
    assert valid.counts[index["c"]] == 1 and valid.counts[index["b"]] == 1  # u1 valid c, u2 valid b hidden


def test_ties_break_towards_lower_item_id() -> None:
    ds = make_dataset({"u1": ["b", "a", "c"], "u2": ["a", "b", "c"]})
    items, scores = MostPop.fit(ds, "test").recommend([np.array([], dtype=np.int64)], 3)
    assert items[0, :2].tolist() == [0, 1]  # a and b both seen twice: a (id 0) first
    assert scores[0].tolist() == [2.0, 2.0, 0.0]  # c is every user's test item: not counted


def test_served_it_counts_everything() -> None:
    ds = make_dataset({"u1": ["a", "b", "c", "x"], "u2": ["a", "c", "b", "x"], "u3": ["x", "y"]})
    assert MostPop.fit(ds).counts[ds.item_index()["x"]] == 3
