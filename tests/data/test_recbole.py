import pytest

from alignrec.data.recbole import load_recbole, parse_inter, parse_item
from alignrec.errors import DataError


def test_parse_inter_handles_crlf_and_typed_headers() -> None:
    text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n1m_1\tToy Story (1995)\t5\t10\r\n"
    inter = parse_inter(text, "x.inter")
    assert inter.users == ["1m_1"] and inter.items == ["Toy Story (1995)"]
    assert inter.timestamps == [10.0] and inter.ratings == [5.0]
    assert inter.locate(0) == "x.inter line 2"


def test_parse_inter_without_timestamp_keeps_file_order() -> None:
    inter = parse_inter("user_id:token\titem_id:token\nu\tb\nu\ta\n", "x.inter")
    assert inter.timestamps is None and inter.items == ["b", "a"]


def test_missing_column_names_the_file_and_line() -> None:
    with pytest.raises(DataError, match=r"x.inter line 1: missing column 'item_id'"):
        parse_inter("user_id:token\tthing:token\nu\ti\n", "x.inter")


def test_short_line_names_its_number() -> None:
    with pytest.raises(DataError, match=r"x.inter line 3: 1 tab-separated fields"):
        parse_inter("user_id:token\titem_id:token\nu\ti\nu\n", "x.inter")


def test_non_numeric_timestamp_is_named() -> None:
    with pytest.raises(DataError, match=r"line 2: timestamp 'yesterday' is not a number"):
        parse_inter("user_id:token\titem_id:token\ttimestamp:float\nu\ti\tyesterday\n", "x.inter")


def test_parse_item_maps_columns_to_canonical_text_and_drops_placeholders() -> None:
    text = (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "267\tunkonwn\tunkonwn\tunknown\n"
    )
    items = parse_item(text, "x.item")
    assert items["1"] == {"title": "Toy Story", "genres": "Animation, Children's, Comedy", "year": "1995"}
    assert items["267"] == {}


def test_duplicate_item_line_is_an_error() -> None:
    with pytest.raises(DataError, match="listed twice"):
        parse_item("item_id:token\ttitle:token\n1\tA\n1\tB\n", "x.item")


def test_load_recbole_folder_reads_item_file(tmp_path) -> None:
    (tmp_path / "d.inter").write_text("user_id:token\titem_id:token\nu\t1\n")
    (tmp_path / "d.item").write_text("item_id:token\ttitle:token\n1\tOne\n")
    raw = load_recbole(tmp_path)
    assert raw.name == "d" and raw.item_text == {"1": {"title": "One"}}
    assert set(raw.sources) == {str(tmp_path / "d.inter"), str(tmp_path / "d.item")}


def test_load_recbole_missing_path() -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_recbole(__import__("pathlib").Path("/nonexistent/x.inter"))


def test_load_recbole_decodes_the_declared_encoding_and_names_bad_bytes(tmp_path) -> None:
    (tmp_path / "d.inter").write_bytes(b"user_id:token\titem_id:token\nu\t1\n")
    (tmp_path / "d.item").write_bytes("item_id:token\ttitle:token\n1\tAm\u00e9lie\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"d.item line 2: not valid UTF-8 \(byte 0xe9 at column 5\)"):
        load_recbole(tmp_path)
    assert load_recbole(tmp_path, "latin-1").item_text == {"1": {"title": "Am\u00e9lie"}}
