from alignrec.data.stats import dataset_stats, format_stats
from tests.conftest import make_dataset


def test_stats_counts(tiny) -> None:
    stats = dataset_stats(tiny)
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 5, 9)
    assert stats["sparsity"] == 1 - 9 / 15
    assert stats["sequence_length"]["p50"] == 3 and stats["sequence_length"]["p100"] == 4
    assert stats["evaluable_users"] == 2 and stats["users_too_short_to_evaluate"] == 1
    assert stats["text_coverage"]["title"] == 1.0 and stats["text_coverage"]["genres"] == 0.0
    assert "title 100.0%" in format_stats(stats)


def test_id_only_dataset_says_so() -> None:
    stats = dataset_stats(make_dataset({"u": ["a", "b", "a"]}))
    assert stats["text"].startswith("id-only")
    assert stats["repeated_user_item_pairs"] == 1
    assert "ID-only dataset" in format_stats(stats)
