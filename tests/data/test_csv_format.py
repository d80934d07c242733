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


def test_bytes_that_do_not_decode_name_line_and_column(tmp_path) -> None:
    (tmp_path / "r.csv").write_bytes("u,i\n1,2\n1,Mot\u00f6rhead\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"r.csv line 3: not valid UTF-8 \(byte 0xf6 at column 6\); save the file as"):
        load_csv(tmp_path / "r.csv", {"user": "u", "item": "i"})


def test_declared_encoding_reads_interactions_and_item_table(tmp_path) -> None:
    (tmp_path / "r.csv").write_bytes("u,i\n1,m\u00f6\n".encode("cp1252"))
    (tmp_path / "m.csv").write_bytes("i,t\nm\u00f6,Caf\u00e9 \u20ac\n".encode("cp1252"))
    raw = load_csv(tmp_path / "r.csv", {"user": "u", "item": "i"}, item_path=tmp_path / "m.csv",
                   item_columns={"item": "i", "title": "t"}, encoding="cp1252")
    assert raw.interactions.items == ["m\u00f6"] and raw.item_text == {"m\u00f6": {"title": "Caf\u00e9 \u20ac"}}


def test_a_bad_byte_under_another_encoding_names_that_encoding(tmp_path) -> None:
    (tmp_path / "r.csv").write_bytes(b"u,i\n1,\x81\n")  # 0x81 is undefined in cp1252
    with pytest.raises(DataError, match=r"line 2: not valid cp1252 \(byte 0x81 at column 3\); save the file as cp1252"):
        load_csv(tmp_path / "r.csv", {"user": "u", "item": "i"}, encoding="cp1252")
