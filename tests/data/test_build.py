import numpy as np
import pytest

from alignrec.data.build import FilterOptions, build_dataset, k_core, natural_order
from alignrec.data.raw import RawData, RawInteractions
from alignrec.errors import DataError


def raw(users, items, times=None, ratings=None, item_text=None) -> RawData:
    return RawData(
        name="t",
        interactions=RawInteractions(list(users), list(items), times, ratings, lambda i: f"t.inter line {i + 2}"),
        item_text=item_text,
        item_source="t.item" if item_text is not None else None,
    )


def test_orders_by_timestamp_then_file_order() -> None:
    ds = build_dataset(raw("uuuu", ["c", "a", "b", "d"], [2.0, 1.0, 2.0, 0.5]), FilterOptions(), {})
    # d (0.5), a (1.0), then c and b tie at 2.0 and keep file order.
    assert [ds.item_ids[i] for i in ds.sequence(0)] == ["d", "a", "c", "b"]


def test_natural_order_sorts_digit_runs_numerically() -> None:
    ids = np.array(["1m_10", "1m_9", "1m_100", "2", "10", "1"])
    assert [ids[i] for i in natural_order(ids)] == ["1", "1m_9", "1m_10", "1m_100", "2", "10"]


def test_reindexing_is_deterministic_and_keeps_original_ids() -> None:
    a = build_dataset(raw(["u2", "u1", "u10"], ["x", "y", "x"]), FilterOptions(), {})
    b = build_dataset(raw(["u2", "u1", "u10"], ["x", "y", "x"]), FilterOptions(), {})
    assert a.user_ids.tolist() == ["u1", "u2", "u10"] == b.user_ids.tolist()
    assert np.array_equal(a.items, b.items) and np.array_equal(a.offsets, b.offsets)


def test_k_core_is_iterative() -> None:
    # Removing item z (1 interaction) leaves user v with 1 interaction, so v goes too.
    users = np.array([0, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 0, 1, 1, 2])
    keep = k_core(users, items, min_user=2, min_item=2)
    assert keep.tolist() == [True, True, True, True, False, False]


def test_max_history_keeps_the_latest() -> None:
    ds = build_dataset(raw("uuuu", "abcd", [1.0, 2.0, 3.0, 4.0]), FilterOptions(max_history=2), {})
    assert [ds.item_ids[i] for i in ds.sequence(0)] == ["c", "d"]
    assert ds.manifest["dropped"]["max_history"] == 2
    assert ds.num_items == 2  # items seen only in dropped history leave the catalogue


def test_min_rating_filters_and_is_counted() -> None:
    ds = build_dataset(raw("uuu", "abc", ratings=[5.0, 2.0, 4.0]), FilterOptions(min_rating=4), {})
    assert ds.num_interactions == 2 and ds.manifest["dropped"]["below_min_rating"] == 1


def test_min_rating_without_ratings_is_an_error() -> None:
    with pytest.raises(DataError, match="no rating column"):
        build_dataset(raw("u", "a"), FilterOptions(min_rating=4), {})


def test_empty_after_filtering_names_the_thresholds() -> None:
    with pytest.raises(DataError, match=r"no interaction is left.*min_user_interactions=5.*lower"):
        build_dataset(raw("uv", "ab"), FilterOptions(min_user_interactions=5), {})


def test_item_missing_from_item_file_names_the_place_and_fix() -> None:
    with pytest.raises(DataError, match=r"t.inter line 3: item 'b' is not in the item file t.item; add it"):
        build_dataset(raw("uu", "ab", item_text={"a": {"title": "A"}}), FilterOptions(), {})


def test_text_columns_and_catalogue_drops_are_recorded() -> None:
    text = {"a": {"title": "A"}, "b": {"title": "B", "genres": "x"}, "c": {"title": "C"}}
    ds = build_dataset(raw("uu", "ab", item_text=text), FilterOptions(), {})
    assert ds.item_text["title"].tolist() == ["A", "B"]
    assert ds.item_text["genres"].tolist() == ["", "x"]
    assert ds.manifest["dropped"]["catalog_items_without_interactions"] == 1


def test_no_interactions() -> None:
    with pytest.raises(DataError, match="no interactions"):
        build_dataset(raw([], []), FilterOptions(), {"path": "empty.inter"})
