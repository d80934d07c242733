"""What every reader returns: interactions and item text with original ids.

Readers keep where each interaction came from (file and line, or JSON path) so
that a later check can name the exact place of a problem.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alignrec.errors import DataError


@dataclass
class RawInteractions:
    """Interactions in file order; ``timestamps`` is None where the source is ordered by position."""

    users: list[str]
    items: list[str]
    timestamps: list[float] | None
    ratings: list[float] | None
    locate: Callable[[int], str]
    """Maps an interaction's index to a human-readable place, e.g. ``ml-1m.inter line 17``."""


@dataclass
class RawData:
    """Everything one source provides, before filtering and re-indexing."""

    name: str
    interactions: RawInteractions
    item_text: dict[str, dict[str, str]] | None
    """Original item id -> canonical text fields; None for an ID-only dataset."""
    item_source: str | None
    """The file the item text came from (for error messages)."""
    sources: dict[str, str] = field(default_factory=dict)
    """A description of each source file -> its sha256."""
    published_codes: dict[str, list[str]] | None = None
    """Semantic IDs shipped with the data (LC-Rec ``.index.json``), kept for comparison."""


def find_interaction_file(path: Path, suffix: str, kind: str) -> Path:
    """The one ``*{suffix}`` file in folder ``path``, or ``path`` itself when it is that file."""
    if path.is_dir():
        found = sorted(path.glob(f"*{suffix}"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise DataError(
                f"{path}: expected exactly one *{suffix} file (found: {names}); "
                "pass the file itself with --path"
            )
        return found[0]
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder; pass a {kind} X{suffix} file or its folder")
    if not path.name.endswith(suffix):
        raise DataError(f"{path}: a {kind} interaction file is named X{suffix}")
    return path


def read_text(path: Path, encoding: str = "utf-8", fix: str | None = None) -> str:
    """The whole file decoded with ``encoding``; bytes that do not decode are a :class:`DataError`
    naming their line and column (a ``UnicodeDecodeError`` names only a byte offset).

    ``fix`` is the advice at the end of that message (default: re-save the file or set ``data.encoding``).
    """
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode(encoding, errors="replace")
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
        advice = fix or f"save the file as {name}, or give its encoding with data.encoding / --encoding (e.g. latin-1)"
        raise DataError(
            f"{path} line {line}: not valid {name} (byte 0x{data[exc.start]:02x} at column {column}); {advice}"
        ) from None
