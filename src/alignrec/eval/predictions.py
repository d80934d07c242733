"""Read a JSON Lines predictions file: ``{"user": "<id>", "items": ["<id>", ...]}`` per line."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from alignrec.data.dataset import SequenceDataset
from alignrec.data.raw import read_text
from alignrec.errors import DataError
from alignrec.eval.ranking import INVALID


@dataclass
class Predictions:
    rankings: dict[int, list[int]]
    """Internal user id -> internal item ids, best first; unknown item ids are INVALID."""
    warning: str | None
    """One line for the user when some, not all, item ids are unknown."""


def load_predictions(path: str | Path, dataset: SequenceDataset) -> Predictions:
    """The file's rankings in internal ids; a file none of whose item ids is in the dataset is an
    error, since it would score all zeros without a word (usually ids of another dataset, or
    internal indices written instead of original ids)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file; pass a JSON Lines file with --predictions")
    users = dataset.user_index()
    items = dataset.item_index()
    rankings: dict[int, list[int]] = {}
    total = unknown = 0
    first_unknown = None
    text = read_text(path, "utf-8", "JSON Lines are UTF-8: save the file as UTF-8")
    for number, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number}: malformed JSON ({exc.msg}); fix the line") from None
        if not isinstance(row, dict) or "user" not in row or not isinstance(row.get("items"), list):
            raise DataError(
                f"{path} line {number}: expected {{\"user\": \"<user id>\", \"items\": [\"<item id>\", ...]}}"
            )
        user = users.get(str(row["user"]))
        if user is None:
            raise DataError(
                f"{path} line {number}: user {row['user']!r} is not in dataset {dataset.name!r}; "
                "use the original user ids of the prepared dataset"
            )
        if user in rankings:
            raise DataError(f"{path} line {number}: user {row['user']!r} appears twice; keep one line")
        ranking = [items.get(str(item), INVALID) for item in row["items"]]
        if first_unknown is None and INVALID in ranking:
            first_unknown = row["items"][ranking.index(INVALID)]
        total += len(ranking)
        unknown += ranking.count(INVALID)
        rankings[user] = ranking
    if total and unknown == total:
        raise DataError(
            f"{path}: none of its {total:,} item ids is in dataset {dataset.name!r} (the first: {first_unknown!r}); "
            f"write the dataset's original item ids (such as {str(dataset.item_ids[0])!r}), "
            "not internal indices or the ids of another dataset"
        )
    warning = None
    if unknown:
        warning = (f"{path}: {unknown:,} of {total:,} item ids ({unknown / total:.1%}) are not in dataset "
                   f"{dataset.name!r} (the first: {first_unknown!r}); they count as misses")
    return Predictions(rankings, warning)


def read_predictions(path: str | Path, dataset: SequenceDataset) -> dict[int, list[int]]:
    """Internal-id rankings; unknown item ids become INVALID (scored as misses)."""
    return load_predictions(path, dataset).rankings
