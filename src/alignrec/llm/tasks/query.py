"""A natural-language need built from an item's metadata -> that item.

The query names one or two of the item's genres/categories, and its decade or brand
when known ("Something Comedy and Romance from the 1990s:"). Several items can fit a
query; the task teaches the model which codes carry which facets.
"""

from __future__ import annotations

import numpy as np

from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example, item, pick, text

NEEDS = "genres, categories, year or brand"
TEMPLATES = ("I'd like something {}.", "Recommend an item {}:", "Looking for something {}.")


def describe(ctx: TaskContext, i: int, rng: np.random.Generator) -> str:
    genres = ctx.facts.genres(i)
    parts = []
    if genres:
        chosen = rng.choice(genres, size=min(len(genres), int(rng.integers(1, 3))), replace=False)
        parts.append(" and ".join(str(g) for g in chosen))
    brand = ctx.facts.brand(i)
    if brand:
        parts.append(f"by {brand}")
    year = ctx.facts.year(i)
    if year[:3].isdigit():
        parts.append(f"from the {year[:3]}0s")
    return " ".join(parts)


def build(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    examples = []
    for i in range(ctx.num_items):
        need = describe(ctx, i, rng)
        if need:
            examples.append(Example("query_to_item", [text(pick(rng, TEMPLATES).format(need)), item(i, target=True)]))
    return examples
