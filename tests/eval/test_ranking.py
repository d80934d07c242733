import torch

from alignrec.config import EvalConfig
from alignrec.data.split import eval_users, history
from alignrec.eval.ranking import INVALID, clean_ranking, rank_users
from alignrec.recommender import top_k


def test_clean_ranking_dedups_keeping_first_and_excludes_history() -> None:
    assert clean_ranking([5, 3, 5, 2, 3, 9], excluded=[2]) == [5, 3, 9]


def test_clean_ranking_keeps_invalid_ids_in_place_as_misses() -> None:
    assert clean_ranking([INVALID, 4, INVALID, 4, 1]) == [INVALID, 4, INVALID, 1]


def test_clean_ranking_cuts_to_length_after_cleaning() -> None:
    assert clean_ranking([1, 1, 2, 3, 4], excluded=[2], length=2) == [1, 3]


class Reverse:
    """Recommends the highest item ids first, and records the batches it was asked for."""

    name = "reverse"
    batch_size = 2

    def __init__(self) -> None:
        self.calls: list[int] = []

    def recommend(self, histories, k, exclude_history=True):  # noqa: ANN001, ANN201
        self.calls.append(len(histories))
        scores = torch.arange(5, dtype=torch.float32).expand(len(histories), -1)
        return top_k(scores, histories, k, exclude_history)


def test_rank_users_asks_in_the_recommenders_batch_size_and_drops_pads(tiny) -> None:  # noqa: ANN001
    model = Reverse()
    model.batch_size = 1
    users = eval_users(tiny)  # u1 (a b c d) and u2 (b c e)
    rankings = rank_users(model, tiny, users, "test", EvalConfig(ks=[4]), progress=False)
    assert model.calls == [1, 1]
    index = tiny.item_index()
    for user in users:
        seen = set(history(tiny, int(user), "test").tolist())
        assert rankings[int(user)] == [i for i in (4, 3, 2, 1, 0) if i not in seen][:4]
    # u1 has seen a, b, c before its test item: two are left of the four asked for, and no pad
    assert sorted(rankings[tiny.user_index()["u1"]]) == sorted([index["d"], index["e"]])
