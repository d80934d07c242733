"""LC-Rec / LETTER JSON: ``X.inter.json`` (+ optional ``X.item.json``, ``X.index.json``).

``X.inter.json`` maps each user to their items in time order (no timestamps:
position is time); ``X.item.json`` maps an item to ``{title, description,
brand, categories}``; ``X.index.json`` maps an item to its published semantic
IDs. See ``shared/data/amazon/README.md`` for real examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignrec.data.raw import RawData, RawInteractions, find_interaction_file, read_text
from alignrec.data.text import canonical_item_fields
from alignrec.errors import DataError
from alignrec.io import sha256_file


def _read_json(path: Path, encoding: str) -> Any:
    text = read_text(path, encoding)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} line {exc.lineno} column {exc.colno}: malformed JSON ({exc.msg}); fix the file"
        ) from None


def _id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DataError(f"{where}: item id {value!r} must be an integer or a string")
    return str(value)


def parse_inter(obj: Any, source: str) -> RawInteractions:
    if not isinstance(obj, dict):
        raise DataError(
            f"{source}: the top level must be an object {{\"<user id>\": [item ids in time order]}}"
        )
    users: list[str] = []
    items: list[str] = []
    places: list[tuple[str, int]] = []
    for user, sequence in obj.items():
        if not isinstance(sequence, list):
            raise DataError(
                f"{source} user {user!r}: expected a list of item ids in time order, "
                f"got {type(sequence).__name__}"
            )
        for position, item in enumerate(sequence):
            users.append(str(user))
            items.append(_id(item, f"{source} user {user!r} position {position}"))
            places.append((str(user), position))
    return RawInteractions(
        users=users,
        items=items,
        timestamps=None,
        ratings=None,
        locate=lambda i: f"{source} user {places[i][0]!r} position {places[i][1]}",
    )


def parse_items(obj: Any, source: str) -> dict[str, dict[str, str]]:
    if not isinstance(obj, dict):
        raise DataError(f"{source}: the top level must be an object {{\"<item id>\": {{\"title\": ...}}}}")
    catalog: dict[str, dict[str, str]] = {}
    for item, fields in obj.items():
        if not isinstance(fields, dict):
            raise DataError(
                f"{source} item {item!r}: expected an object with title/description/brand/categories"
            )
        catalog[str(item)] = canonical_item_fields(fields)
    return catalog


def parse_index(obj: Any, source: str) -> dict[str, list[str]]:
    if not isinstance(obj, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in obj.values()
    ):
        raise DataError(f"{source}: expected {{\"<item id>\": [\"<a_1>\", \"<b_2>\", ...]}}")
    return {str(k): list(v) for k, v in obj.items()}


def load_lcrec(path: Path, encoding: str = "utf-8") -> RawData:
    """``path`` is the folder holding ``X.inter.json`` or that file itself."""
    inter_path = find_interaction_file(path, ".inter.json", "LC-Rec")
    stem = inter_path.name[: -len(".inter.json")]
    item_path = inter_path.with_name(f"{stem}.item.json")
    index_path = inter_path.with_name(f"{stem}.index.json")
    sources = {str(inter_path): sha256_file(inter_path)}
    interactions = parse_inter(_read_json(inter_path, encoding), str(inter_path))
    item_text = None
    if item_path.is_file():
        item_text = parse_items(_read_json(item_path, encoding), str(item_path))
        sources[str(item_path)] = sha256_file(item_path)
    codes = None
    if index_path.is_file():
        codes = parse_index(_read_json(index_path, encoding), str(index_path))
        sources[str(index_path)] = sha256_file(index_path)
    return RawData(
        name=stem,
        interactions=interactions,
        item_text=item_text,
        item_source=str(item_path) if item_text is not None else None,
        sources=sources,
        published_codes=codes,
    )
