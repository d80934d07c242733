"""Item codes <-> language: codes -> title (or description), and title (or description) -> codes.

Built over the catalogue (item facts are not interactions, so nothing here can leak
a held-out target). Items without a title are skipped; ID-only datasets skip both tasks.
"""

from __future__ import annotations

import numpy as np

from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example, item, pick, text

NEEDS = "titles"
TO_TEXT = ("Title of item ", "The item ", "Name the item ")
TO_TEXT_END = (":", " is called:", ":")
DESCRIBE = ("Describe item ", "What is item ")
TO_ITEM = ('Which item is titled "{}"?', 'Find the item "{}":', 'The item called "{}" is')
DESCRIPTION_TO_ITEM = ("Which item matches this description: {}?", "Find the item described as: {}.")


def build_item_to_text(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    examples = []
    for i in range(ctx.num_items):
        title = ctx.facts.title(i)
        if title:
            choice = int(rng.integers(len(TO_TEXT)))
            examples.append(Example("item_to_text", [
                text(TO_TEXT[choice]), item(i), text(TO_TEXT_END[choice]), text(f" {title}", target=True)]))
        description = ctx.facts.description(i)
        if description:
            examples.append(Example("item_to_text", [
                text(pick(rng, DESCRIBE)), item(i), text(":"), text(f" {description}", target=True)]))
    return examples


def build_text_to_item(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    examples = []
    for i in range(ctx.num_items):
        title = ctx.facts.title(i)
        if title:
            examples.append(Example("text_to_item", [text(pick(rng, TO_ITEM).format(title)), item(i, target=True)]))
        description = ctx.facts.description(i)
        if description:
            examples.append(Example("text_to_item", [
                text(pick(rng, DESCRIPTION_TO_ITEM).format(description)), item(i, target=True)]))
    return examples
