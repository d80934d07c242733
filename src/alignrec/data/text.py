"""Map source-specific item columns onto alignrec's canonical text fields."""

from __future__ import annotations

import html
import re

from alignrec.config import TEXT_FIELDS

ALIASES: dict[str, str] = {
    "title": "title",
    "movie_title": "title",
    "name": "title",
    "genre": "genres",
    "genres": "genres",
    "class": "genres",
    "categories": "categories",
    "category": "categories",
    "year": "year",
    "release_year": "year",
    "brand": "brand",
    "description": "description",
}
"""Column names seen in RecBole, LC-Rec and MovieLens files -> canonical field."""

PLACEHOLDERS = frozenset({"unknown", "unkonwn", "n/a", "none", "null", "nan"})
"""Values that mean "no text" (ML-100k item 267 is titled ``unkonwn``)."""

_TAGS = re.compile(r"<[^>]+>")


def clean_text(value: object) -> str:
    """Unescape HTML, drop tags, collapse white space; placeholders become empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(clean_text(v) for v in value if clean_text(v))
    text = _TAGS.sub(" ", html.unescape(str(value)))
    text = " ".join(text.split())
    if text.lower() in PLACEHOLDERS:
        return ""
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # years stored as floats, e.g. "1995.0"
    return text


def canonical_item_fields(raw: dict[str, object], token_seq: bool = False) -> dict[str, str]:
    """Keep the known text fields under their canonical names; drop unknown columns.

    ``token_seq``: genre-like values are space-separated tokens (RecBole), shown
    to people and models as a comma-separated list.
    """
    fields: dict[str, str] = {}
    for name, value in raw.items():
        canonical = ALIASES.get(name.lower())
        if canonical is None:
            continue
        text = clean_text(value)
        if token_seq and canonical in ("genres", "categories") and "," not in text:
            text = ", ".join(text.split())
        if text and not fields.get(canonical):
            fields[canonical] = text
    return {name: fields[name] for name in TEXT_FIELDS if name in fields}
