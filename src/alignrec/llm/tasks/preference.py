"""History -> a short summary of the user's tastes, built from the items' metadata.

One example per training window (the same windows as the sequential task); the
summary counts the window's genres/categories, brands and decades.
"""

from __future__ import annotations

import numpy as np

from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example, pick, text
from alignrec.llm.tasks.metadata import taste_summary
from alignrec.llm.tasks.sequential import history_pieces

NEEDS = "genres, categories, year or brand"
TEMPLATES = ("A user chose:", "Items a user liked:", "This user's history:")
QUESTION = (" Their tastes in short:", " Summarise what they like:")


def build(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    examples = []
    for user, sequence in enumerate(ctx.train_sequences):
        for window in ctx.windows(sequence):
            summary = taste_summary(ctx.facts, window)
            if summary:
                examples.append(Example("preference", [
                    text(pick(rng, TEMPLATES)), *history_pieces(window, len(window)),
                    text(pick(rng, QUESTION)), text(f" {summary}", target=True)], user))
    return examples
