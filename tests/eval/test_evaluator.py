"""The harness on a dataset small enough to check every number by hand."""

import math

import pytest

from alignrec.config import EvalConfig
from alignrec.eval.evaluator import evaluate_rankings, write_evaluation
from alignrec.eval.ranking import INVALID
from alignrec.io import read_json
from tests.conftest import make_dataset


@pytest.fixture
def ds():
    # items a..f -> ids 0..5. Test targets: u1 -> d, u2 -> e, u3 -> f. Valid: c, c, b.
    return make_dataset(
        {"u1": ["a", "b", "c", "d"], "u2": ["a", "b", "c", "e"], "u3": ["a", "b", "f"]}
    )


def ids(ds, *names):
    index = ds.item_index()
    return [index[n] for n in names]


def test_metrics_by_hand(ds) -> None:
    u1, u2, u3 = 0, 1, 2
    rankings = {
        u1: ids(ds, "d", "e"),  # rank 1
        u2: ids(ds, "d", "f", "e"),  # rank 3
        u3: ids(ds, "d", "e"),  # miss
    }
    result = evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[1, 5]))
    assert result.num_users == 3
    assert result.metrics["recall@1"] == pytest.approx(1 / 3)
    assert result.metrics["recall@5"] == pytest.approx(2 / 3)
    assert result.metrics["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert result.metrics["mrr"] == pytest.approx((1 + 1 / 3) / 3)


def test_history_is_removed_before_ranking(ds) -> None:
    # u1 saw a, b, c: with exclusion, d moves from rank 4 to rank 1.
    rankings = {0: ids(ds, "a", "b", "c", "d")}
    excluded = evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[1]))
    kept = evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[1, 5], exclude_history=False))
    assert excluded.metrics["recall@1"] == pytest.approx(1 / 3)
    assert kept.metrics["recall@1"] == 0.0
    assert kept.metrics["ndcg@5"] == pytest.approx(1 / math.log2(5) / 3)


def test_duplicates_count_once(ds) -> None:
    # LC-Rec-style scoring would count a repeated target twice; we de-duplicate.
    rankings = {0: ids(ds, "e", "e", "d")}
    result = evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[2], exclude_history=False))
    assert result.metrics["recall@2"] == pytest.approx(1 / 3)
    assert result.metrics["ndcg@2"] == pytest.approx(1 / math.log2(3) / 3)


def test_missing_users_are_misses_and_invalid_ids_take_a_slot(ds) -> None:
    rankings = {0: [INVALID, *ids(ds, "d")]}
    result = evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[1, 2]))
    assert result.metrics["recall@1"] == 0.0
    assert result.metrics["recall@2"] == pytest.approx(1 / 3)
    assert result.diagnostics["users_without_ranking"] == 2
    assert result.diagnostics["invalid_item_share"] == pytest.approx(1 / 2)


def test_valid_split_uses_the_second_to_last_item(ds) -> None:
    rankings = {0: ids(ds, "c"), 1: ids(ds, "c"), 2: ids(ds, "b")}
    assert evaluate_rankings(ds, rankings, "valid", "m", EvalConfig(ks=[1])).metrics["recall@1"] == 1.0
    assert evaluate_rankings(ds, rankings, "test", "m", EvalConfig(ks=[1])).metrics["recall@1"] == 0.0


def test_write_evaluation_uses_original_ids(ds, tmp_path) -> None:
    result = evaluate_rankings(ds, {0: ids(ds, "d")}, "test", "m", EvalConfig(ks=[1]))
    write_evaluation(tmp_path, result, ds, {"k": 1}, {"wall_time_s": 1.5})
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["model"] == "m" and metrics["split"] == "test" and metrics["num_users"] == 3
    assert metrics["config"] == {"k": 1} and metrics["wall_time_s"] == 1.5
    lines = (tmp_path / "rankings_test.jsonl").read_text().splitlines()
    assert '{"user": "u1", "items": ["d"]}' in lines


def test_the_longest_submitted_list_is_recorded(ds) -> None:
    result = evaluate_rankings(ds, {0: ids(ds, "d", "e"), 1: ids(ds, "a")}, "test", "m", EvalConfig(ks=[1, 5]))
    assert result.diagnostics["ranked_items"] == 2 and "recall@5" in result.metrics
