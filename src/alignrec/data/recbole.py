"""RecBole atomic files: ``X.inter`` (+ optional ``X.item``), tab separated, typed headers.

The header names each column as ``name:type`` (``user_id:token``,
``timestamp:float``...). Lines may end in CRLF (the ML-1M copy does).
"""

from __future__ import annotations

from pathlib import Path

from alignrec.data.raw import RawData, RawInteractions, find_interaction_file, read_text
from alignrec.data.text import canonical_item_fields
from alignrec.errors import DataError
from alignrec.io import sha256_file


def _header(line: str, source: str) -> list[str]:
    names = [column.split(":", 1)[0].strip() for column in line.rstrip("\r\n").split("\t")]
    if not names or names == [""]:
        raise DataError(f"{source} line 1: empty header; the first line must name the columns")
    return names


def _require(names: list[str], required: list[str], source: str, example: str) -> list[int]:
    missing = [r for r in required if r not in names]
    if missing:
        raise DataError(
            f"{source} line 1: missing column {missing[0]!r} (found: {', '.join(names)}); "
            f"the header must look like {example!r}"
        )
    return [names.index(r) for r in required]


def parse_inter(text: str, source: str) -> RawInteractions:
    """Parse the text of a ``.inter`` file; ``source`` names it in errors."""
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{source}: the file is empty; it needs a header and one interaction a line")
    names = _header(lines[0], source)
    user_col, item_col = _require(
        names, ["user_id", "item_id"], source, "user_id:token\titem_id:token\ttimestamp:float"
    )
    time_col = names.index("timestamp") if "timestamp" in names else None
    rating_col = names.index("rating") if "rating" in names else None
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    ratings: list[float] = []
    line_numbers: list[int] = []
    width = len(names)
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != width:
            raise DataError(
                f"{source} line {number}: {len(cells)} tab-separated fields, the header has {width}; "
                "fix the line or the header"
            )
        users.append(cells[user_col])
        items.append(cells[item_col])
        if time_col is not None:
            times.append(_number(cells[time_col], "timestamp", source, number))
        if rating_col is not None:
            ratings.append(_number(cells[rating_col], "rating", source, number))
        line_numbers.append(number)
    return RawInteractions(
        users=users,
        items=items,
        timestamps=times if time_col is not None else None,
        ratings=ratings if rating_col is not None else None,
        locate=lambda i: f"{source} line {line_numbers[i]}",
    )


def _number(text: str, field: str, source: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{source} line {line}: {field} {text!r} is not a number; fix the value") from None


def parse_item(text: str, source: str) -> dict[str, dict[str, str]]:
    """Parse the text of a ``.item`` file into original item id -> canonical text fields."""
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{source}: the file is empty; it needs a header with item_id")
    names = _header(lines[0], source)
    (item_col,) = _require(names, ["item_id"], source, "item_id:token\ttitle:token_seq")
    catalog: dict[str, dict[str, str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(names):
            raise DataError(
                f"{source} line {number}: {len(cells)} tab-separated fields, the header has "
                f"{len(names)}; fix the line or the header"
            )
        item_id = cells[item_col]
        if item_id in catalog:
            raise DataError(f"{source} line {number}: item {item_id!r} is listed twice; keep one line")
        raw_fields = {n: c for n, c in zip(names, cells, strict=True) if n != "item_id"}
        catalog[item_id] = canonical_item_fields(raw_fields, token_seq=True)
    return catalog


def load_recbole(path: Path, encoding: str = "utf-8") -> RawData:
    """``path`` is a folder holding ``X.inter`` (and maybe ``X.item``), or the ``.inter`` file."""
    inter_path = find_interaction_file(path, ".inter", "RecBole")
    item_path = inter_path.with_suffix(".item")
    sources = {str(inter_path): sha256_file(inter_path)}
    interactions = parse_inter(read_text(inter_path, encoding), str(inter_path))
    item_text = None
    if item_path.is_file():
        item_text = parse_item(read_text(item_path, encoding), str(item_path))
        sources[str(item_path)] = sha256_file(item_path)
    return RawData(
        name=inter_path.stem,
        interactions=interactions,
        item_text=item_text,
        item_source=str(item_path) if item_text is not None else None,
        sources=sources,
    )
