import json

import pytest

from alignrec.errors import DataError
from alignrec.eval.predictions import read_predictions
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
