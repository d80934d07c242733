import json

import pytest

from alignrec.data.lcrec import load_lcrec
from alignrec.errors import DataError


def write(path, obj) -> None:
    path.write_text(json.dumps(obj))


def test_loads_inter_item_and_index(tmp_path) -> None:
    write(tmp_path / "X.inter.json", {"0": [0, 1, 2], "1": [2, 1]})
    write(tmp_path / "X.item.json", {"0": {"title": "Guitar &amp; Strap", "brand": "Fender",
                                           "categories": ["Music", "Guitars"]},
                                     "1": {"title": "Pick"}, "2": {"title": "Amp"}})
    write(tmp_path / "X.index.json", {"0": ["<a_1>", "<b_2>"]})
    raw = load_lcrec(tmp_path)
    assert raw.name == "X" and raw.interactions.items == ["0", "1", "2", "2", "1"]
    assert raw.interactions.timestamps is None
    assert raw.item_text["0"] == {"title": "Guitar & Strap", "categories": "Music, Guitars", "brand": "Fender"}
    assert raw.published_codes == {"0": ["<a_1>", "<b_2>"]}
    assert raw.interactions.locate(4) == f"{tmp_path / 'X.inter.json'} user '1' position 1"


def test_id_only_dataset_has_no_text(tmp_path) -> None:
    write(tmp_path / "X.inter.json", {"0": [0, 1]})
    assert load_lcrec(tmp_path / "X.inter.json").item_text is None


def test_malformed_json_names_line_and_column(tmp_path) -> None:
    (tmp_path / "X.inter.json").write_text('{"0": [0, 1,\n  2,, 3]}')
    with pytest.raises(DataError, match=r"X.inter.json line 2 column 5: malformed JSON"):
        load_lcrec(tmp_path)


def test_wrong_shape_names_the_user(tmp_path) -> None:
    write(tmp_path / "X.inter.json", {"7": {"not": "a list"}})
    with pytest.raises(DataError, match=r"user '7': expected a list"):
        load_lcrec(tmp_path)


def test_bad_item_id_type_names_the_position(tmp_path) -> None:
    write(tmp_path / "X.inter.json", {"7": [1, [2]]})
    with pytest.raises(DataError, match=r"user '7' position 1: item id \[2\]"):
        load_lcrec(tmp_path)


def test_folder_without_inter_file(tmp_path) -> None:
    with pytest.raises(DataError, match=r"expected exactly one \*.inter.json file \(found: none\)"):
        load_lcrec(tmp_path)


def test_bytes_that_do_not_decode_name_line_and_column(tmp_path) -> None:
    (tmp_path / "X.inter.json").write_bytes(b'{"0": [0, 1],\n "1": [2, "\xe9"]}')
    with pytest.raises(DataError, match=r"X.inter.json line 2: not valid UTF-8 \(byte 0xe9 at column 12\)"):
        load_lcrec(tmp_path)
    assert load_lcrec(tmp_path, "latin-1").interactions.items == ["0", "1", "2", "\u00e9"]
