import json

import pytest

from alignrec.errors import DataError
from alignrec.eval.predictions import load_predictions, read_predictions
from alignrec.eval.ranking import INVALID


def write_lines(path, lines) -> None:
    path.write_text("\n".join(lines) + "\n")


def test_reads_original_ids_and_marks_unknown_items(tiny, tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    write_lines(file, [json.dumps({"user": "u1", "items": ["d", "zzz", "a"]})])
    index = tiny.item_index()
    assert read_predictions(file, tiny) == {0: [index["d"], INVALID, index["a"]]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"user": "u1", "items": ["a"', r"p.jsonl line 2: malformed JSON"),
        ('{"user": "u1"}', r"p.jsonl line 2: expected \{\"user\""),
        ('{"user": "nobody", "items": []}', r"line 2: user 'nobody' is not in dataset"),
        ('{"user": "u2", "items": []}', r"line 2: user 'u2' appears twice"),
    ],
)
def test_bad_lines_are_named(tiny, tmp_path, line, message) -> None:
    file = tmp_path / "p.jsonl"
    write_lines(file, ['{"user": "u2", "items": ["a"]}', line])
    with pytest.raises(DataError, match=message):
        read_predictions(file, tiny)


def test_missing_file(tiny, tmp_path) -> None:
    with pytest.raises(DataError, match="no such predictions file"):
        read_predictions(tmp_path / "nope.jsonl", tiny)


def test_no_known_item_is_an_error_naming_the_likely_cause(tiny, tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    write_lines(file, ['{"user": "u1", "items": [0, 1]}', '{"user": "u2", "items": [2]}'])
    with pytest.raises(DataError, match=r"p.jsonl: none of its 3 item ids is in dataset 'tiny' \(the first: 0\); "
                                        r"write the dataset's original item ids \(such as 'a'\), not internal"):
        load_predictions(file, tiny)


def test_some_unknown_items_give_a_warning_with_count_and_share(tiny, tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    write_lines(file, ['{"user": "u1", "items": ["a", "b"]}', '{"user": "u2", "items": ["zzz", "c", "d"]}'])
    assert load_predictions(file, tiny).warning == (
        f"{file}: 1 of 5 item ids (20.0%) are not in dataset 'tiny' (the first: 'zzz'); they count as misses")
    write_lines(file, ['{"user": "u1", "items": ["a", "b"]}'])
    assert load_predictions(file, tiny).warning is None


def test_empty_lists_are_not_taken_for_unknown_items(tiny, tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    write_lines(file, ['{"user": "u1", "items": []}'])
    assert load_predictions(file, tiny).rankings == {0: []}


def test_bytes_that_are_not_utf_8(tiny, tmp_path) -> None:
    file = tmp_path / "p.jsonl"
    file.write_bytes(b'{"user": "u1", "items": ["\xe9"]}\n')
    with pytest.raises(DataError, match=r"p.jsonl line 1: not valid UTF-8 \(byte 0xe9 at column 27\); JSON Lines"):
        load_predictions(file, tiny)
