import pytest

from alignrec.data.csv_format import load_csv
from alignrec.errors import DataError


def test_csv_with_column_mapping_and_item_table(tmp_path) -> None:
    (tmp_path / "r.csv").write_text("userId,movieId,ts\n1,10,5\n1,11,3\n")
    (tmp_path / "m.csv").write_text('movieId,name,genres\n10,"Heat, The",Crime|Drama\n11,Up,Animation\n')
    raw = load_csv(tmp_path / "r.csv", {"user": "userId", "item": "movieId", "timestamp": "ts"},
                   item_path=tmp_path / "m.csv", item_columns={"item": "movieId", "title": "name", "genres": "genres"})
    assert raw.interactions.items == ["10", "11"] and raw.interactions.timestamps == [5.0, 3.0]
    assert raw.item_text["10"] == {"title": "Heat, The", "genres": "Crime|Drama"}


def test_tsv_separator_is_inferred(tmp_path) -> None:
    (tmp_path / "r.tsv").write_text("u\ti\nx\ty\n")
    assert load_csv(tmp_path / "r.tsv", {"user": "u", "item": "i"}).interactions.items == ["y"]


def test_unknown_column_names_the_flag_and_the_columns(tmp_path) -> None:
    (tmp_path / "r.csv").write_text("userId,movieId\n1,10\n")
    with pytest.raises(DataError, match=r"line 1: no column 'uid' for 'user' \(columns: userId, movieId\)"):
        load_csv(tmp_path / "r.csv", {"user": "uid", "item": "movieId"})


def test_unmapped_required_column(tmp_path) -> None:
    (tmp_path / "r.csv").write_text("userId,movieId\n1,10\n")
    with pytest.raises(DataError, match=r"no column mapped to 'item'"):
        load_csv(tmp_path / "r.csv", {"user": "userId"})


def test_ragged_row_names_the_line(tmp_path) -> None:
    (tmp_path / "r.csv").write_text("u,i\n1,2\n3\n")
    with pytest.raises(DataError, match=r"r.csv line 3: 1 fields, the header has 2"):
        load_csv(tmp_path / "r.csv", {"user": "u", "item": "i"})
