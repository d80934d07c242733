import numpy as np

from alignrec.models.mostpop import MostPop
from tests.conftest import make_dataset


def test_counts_only_what_is_visible_before_the_target() -> None:
    # Test targets (x, x) must not be counted when predicting test; they would make x the top item.
    ds = make_dataset({"u1": ["a", "b", "c", "x"], "u2": ["a", "c", "b", "x"], "u3": ["x", "y"]})
    index = ds.item_index()
    test = MostPop(ds, "test")
    assert test.counts[index["x"]] == 1  # only u3's (train-only) x
    assert test.counts[index["a"]] == 2 and test.counts[index["b"]] == 2
    valid = MostPop(ds, "valid")
    assert valid.counts[index["c"]] == 1 and valid.counts[index["b"]] == 1  # u1 valid c, u2 valid b hidden


def test_ties_break_towards_lower_item_id() -> None:
    ds = make_dataset({"u1": ["b", "a", "c"], "u2": ["a", "b", "c"]})
    scores = MostPop(ds, "test")(np.array([0]), [np.array([])])
    order = scores[0].argsort(descending=True).tolist()
    assert order[:2] == [0, 1]  # a and b both seen twice: a (id 0) first
