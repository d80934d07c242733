"""Read a JSON Lines predictions file: ``{"user": "<id>", "items": ["<id>", ...]}`` per line."""

from __future__ import annotations

import json
from pathlib import Path

from alignrec.data.dataset import SequenceDataset
from alignrec.errors import DataError
from alignrec.eval.ranking import INVALID


def read_predictions(path: str | Path, dataset: SequenceDataset) -> dict[int, list[int]]:
    """Internal-id rankings; unknown item ids become INVALID (scored as misses)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file; pass a JSON Lines file with --predictions")
    users = dataset.user_index()
    items = dataset.item_index()
    rankings: dict[int, list[int]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
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
            rankings[user] = [items.get(str(item), INVALID) for item in row["items"]]
    return rankings
