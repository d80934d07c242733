"""History -> next item, trained on every position of a window in one pass.

The window's items follow the instruction as code tokens; every item after the
first is a target, so one forward pass teaches ``history`` next-item predictions.
At recommendation time the prompt is the same text with the last ``history``
items, and beam search writes the next item's codes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example, Piece, item, pick, text
from alignrec.llm.tasks.metadata import ItemFacts

NAME = "sequential"
NEEDS = "nothing"
TEMPLATES = (
    "A user's items, oldest first:",
    "Items this user chose, in time order:",
    "Interaction history, in order:",
    "What the user consumed, one after another:",
)

Title = Callable[[int], str] | None


def history_pieces(items: np.ndarray, first_target: int, title: Title = None) -> list[Piece]:
    """Item pieces for a history (each optionally followed by its title); items at index
    >= ``first_target`` are targets."""
    pieces = []
    for index, value in enumerate(items):
        pieces.append(item(int(value), target=index >= first_target))
        if title is not None:
            pieces.append(text(f" {title(int(value))};"))
    return pieces


def prompt_title(facts: ItemFacts, history_titles: bool) -> Title:
    """The one rule for titles in a history, for training windows and recommendation prompts alike
    (``llm.history_titles``, where the data has titles), so the model is asked what it learnt."""
    return facts.title if history_titles and facts.has_titles else None


def recommendation_prompt(history: np.ndarray, size: int, title: Title = None) -> Example:
    """The prompt whose continuation is the next item: the last ``size`` items, no targets."""
    items = np.asarray(history)[-size:]
    return Example(NAME, [text(TEMPLATES[0]), *history_pieces(items, len(items), title)])


def build(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    title = prompt_title(ctx.facts, ctx.titles_in_history)
    return [
        Example(NAME, [text(pick(rng, TEMPLATES)), *history_pieces(window, 1, title)], user)
        for user, sequence in enumerate(ctx.train_sequences)
        for window in ctx.windows(sequence)
    ]
