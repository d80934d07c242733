import numpy as np
import pytest

from alignrec.data.split import eval_users, history, targets, train_sequence
from tests.conftest import make_dataset


def names(ds, items) -> list[str]:
    return [str(ds.item_ids[i]) for i in items]


def test_leave_one_out(tiny) -> None:
    # u1: a b c d -> train a b, valid c, test d; u2: b c e -> train b, valid c, test e.
    assert eval_users(tiny).tolist() == [0, 1]
    assert names(tiny, targets(tiny, np.array([0, 1]), "test")) == ["d", "e"]
    assert names(tiny, targets(tiny, np.array([0, 1]), "valid")) == ["c", "c"]
    assert names(tiny, history(tiny, 0, "test")) == ["a", "b", "c"]
    assert names(tiny, history(tiny, 0, "valid")) == ["a", "b"]
    assert names(tiny, train_sequence(tiny, 0)) == ["a", "b"]


def test_short_users_train_only(tiny) -> None:
    # u3 has 2 items: all training, never evaluated.
    assert names(tiny, train_sequence(tiny, 2)) == ["a", "e"]
    with pytest.raises(ValueError, match="not evaluable"):
        history(tiny, 2, "test")


def test_training_never_sees_a_target() -> None:
    # Targets v*/t* occur nowhere else, so any leak would show up as a member.
    ds = make_dataset({"u1": ["a", "b", "v1", "t1"], "u2": ["b", "a", "c", "v2", "t2"]})
    for user in eval_users(ds):
        seen = set(names(ds, train_sequence(ds, user)))
        assert not seen & {"v1", "t1", "v2", "t2"}
        assert len(seen) == len(ds.sequence(user)) - 2
