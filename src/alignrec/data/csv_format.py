"""CSV/TSV interactions with a column mapping, and an optional item table.

The mapping names which column holds the canonical fields: ``user`` and
``item`` are required, ``timestamp`` and ``rating`` optional; the item table
maps ``item`` plus any text fields (``title``, ``genres``, ``description``...).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from alignrec.data.raw import RawData, RawInteractions, read_text
from alignrec.data.text import ALIASES, canonical_item_fields
from alignrec.errors import DataError
from alignrec.io import sha256_file


def _separator(path: Path, separator: str | None) -> str:
    if separator:
        return "\t" if separator in ("\\t", "tab") else separator
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def _read_table(
    path: Path, separator: str | None, encoding: str
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows, each with its line number, width-checked."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path")
    reader = csv.reader(io.StringIO(read_text(path, encoding), newline=""), delimiter=_separator(path, separator))
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: the file is empty; the first line must name the columns")
    rows = [(reader.line_num, row) for row in reader if row and any(c.strip() for c in row)]
    header = [h.strip() for h in header]
    for number, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{path} line {number}: {len(row)} fields, the header has {len(header)}; fix the line"
            )
    return header, rows


def _column(header: list[str], mapping: dict[str, str], name: str, path: Path, flag: str) -> int | None:
    column = mapping.get(name)
    if column is None:
        return None
    if column not in header:
        raise DataError(
            f"{path} line 1: no column {column!r} for {name!r} (columns: {', '.join(header)}); "
            f"fix {flag} {name}=<column>"
        )
    return header.index(column)


def read_interactions(
    path: Path, columns: dict[str, str], separator: str | None, encoding: str = "utf-8"
) -> RawInteractions:
    header, rows = _read_table(path, separator, encoding)
    for required in ("user", "item"):
        if required not in columns:
            raise DataError(
                f"{path}: no column mapped to {required!r}; pass --columns "
                f"user=<column>,item=<column>[,timestamp=<column>] (columns: {', '.join(header)})"
            )
    user_col = _column(header, columns, "user", path, "--columns")
    item_col = _column(header, columns, "item", path, "--columns")
    time_col = _column(header, columns, "timestamp", path, "--columns")
    rating_col = _column(header, columns, "rating", path, "--columns")
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    ratings: list[float] = []
    line_numbers: list[int] = []
    for number, row in rows:
        users.append(row[user_col].strip())  # type: ignore[index]
        items.append(row[item_col].strip())  # type: ignore[index]
        for col, name, out in ((time_col, "timestamp", times), (rating_col, "rating", ratings)):
            if col is None:
                continue
            try:
                out.append(float(row[col]))
            except ValueError:
                raise DataError(
                    f"{path} line {number}: {name} {row[col]!r} is not a number; fix the value "
                    f"or map another column"
                ) from None
        line_numbers.append(number)
    return RawInteractions(
        users=users,
        items=items,
        timestamps=times if time_col is not None else None,
        ratings=ratings if rating_col is not None else None,
        locate=lambda i: f"{path} line {line_numbers[i]}",
    )


def read_items(
    path: Path, columns: dict[str, str], separator: str | None, encoding: str = "utf-8"
) -> dict[str, dict[str, str]]:
    header, rows = _read_table(path, separator, encoding)
    if "item" not in columns:
        raise DataError(f"{path}: no column mapped to 'item'; pass --item-columns item=<column>,title=<column>")
    item_col = _column(header, columns, "item", path, "--item-columns")
    text_cols: dict[str, int] = {}
    for name in columns:
        if name == "item":
            continue
        if name not in ALIASES:
            raise DataError(
                f"--item-columns: unknown field {name!r}; use item plus any of {', '.join(sorted(set(ALIASES.values())))}"
            )
        text_cols[name] = _column(header, columns, name, path, "--item-columns")  # type: ignore[assignment]
    catalog: dict[str, dict[str, str]] = {}
    for number, row in rows:
        item = row[item_col].strip()  # type: ignore[index]
        if item in catalog:
            raise DataError(f"{path} line {number}: item {item!r} is listed twice; keep one line")
        catalog[item] = canonical_item_fields({name: row[col] for name, col in text_cols.items()})
    return catalog


def load_csv(
    path: Path,
    columns: dict[str, str],
    separator: str | None = None,
    item_path: Path | None = None,
    item_columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> RawData:
    """Interactions (and item text) from CSV/TSV files in ``encoding``."""
    interactions = read_interactions(path, columns, separator, encoding)
    sources = {str(path): sha256_file(path)}
    item_text = None
    if item_path is not None:
        item_text = read_items(item_path, item_columns or {}, separator, encoding)
        sources[str(item_path)] = sha256_file(item_path)
    return RawData(
        name=path.stem,
        interactions=interactions,
        item_text=item_text,
        item_source=str(item_path) if item_path is not None else None,
        sources=sources,
    )
