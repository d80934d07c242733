"""Item facts that tasks turn into language: title, genres/categories, year, brand, description.

Read from the prepared dataset's text columns; every accessor returns "" or []
when the dataset does not have the field, so a task can tell whether it applies.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from alignrec.data.dataset import SequenceDataset

YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
MAX_DESCRIPTION_WORDS = 40


class ItemFacts:
    def __init__(self, dataset: SequenceDataset) -> None:
        self._text = dataset.item_text
        self.num_items = dataset.num_items

    def _field(self, name: str, item: int) -> str:
        column = self._text.get(name)
        return str(column[item]).strip() if column is not None else ""

    def title(self, item: int) -> str:
        return YEAR_IN_TITLE.sub("", self._field("title", item)).strip()

    def year(self, item: int) -> str:
        year = self._field("year", item)
        if year:
            return year
        match = YEAR_IN_TITLE.search(self._field("title", item))
        return match.group(1) if match else ""

    def genres(self, item: int) -> list[str]:
        raw = self._field("genres", item) or self._field("categories", item)
        return [g.strip() for g in re.split(r"[,|]", raw) if g.strip()]

    def brand(self, item: int) -> str:
        return self._field("brand", item)

    def description(self, item: int) -> str:
        words = self._field("description", item).split()
        return " ".join(words[:MAX_DESCRIPTION_WORDS])

    @property
    def has_titles(self) -> bool:
        return "title" in self._text

    @property
    def has_facets(self) -> bool:
        """Anything a query or a taste summary can be built from."""
        if any(name in self._text for name in ("genres", "categories", "year", "brand")):
            return True
        return any(self.year(i) for i in range(self.num_items))


def taste_summary(facts: ItemFacts, items: np.ndarray, top: int = 3) -> str:
    """'Drama, Comedy and Romance; mostly from the 1990s' from the items' genres and years."""
    genres = Counter(g for i in items for g in facts.genres(int(i)))
    decades = Counter(f"{facts.year(int(i))[:3]}0s" for i in items if facts.year(int(i))[:3].isdigit())
    brands = Counter(facts.brand(int(i)) for i in items if facts.brand(int(i)))
    parts = []
    if genres:
        names = [g for g, _ in genres.most_common(top)]
        parts.append(names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1])
    if brands:
        parts.append(f"often {brands.most_common(1)[0][0]}")
    if decades:
        parts.append(f"mostly from the {decades.most_common(1)[0][0]}")
    return "; ".join(parts)
