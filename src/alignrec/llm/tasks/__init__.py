"""The six alignment task families and the mixture the trainer reads.

Each family is a builder ``(TaskContext, rng) -> list[Example]`` that reads the
training split only. A family whose data a dataset lacks (titles, genres...) is
skipped and named in the mixture's report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alignrec.config import TasksConfig
from alignrec.llm.tasks import item_text, negative, preference, query, sequential
from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example
from alignrec.llm.tasks.metadata import ItemFacts


@dataclass(frozen=True)
class TaskFamily:
    name: str
    build: Callable[[TaskContext, np.random.Generator], list[Example]]
    needs: str
    applies: Callable[[ItemFacts], bool]


def _has_text(facts: ItemFacts) -> bool:
    return facts.has_titles or any(facts.description(i) for i in range(facts.num_items))


TASKS: dict[str, TaskFamily] = {
    family.name: family
    for family in (
        TaskFamily("sequential", sequential.build, sequential.NEEDS, lambda facts: True),
        TaskFamily("item_to_text", item_text.build_item_to_text, item_text.NEEDS, _has_text),
        TaskFamily("text_to_item", item_text.build_text_to_item, item_text.NEEDS, _has_text),
        TaskFamily("query_to_item", query.build, query.NEEDS, lambda facts: facts.has_facets),
        TaskFamily("preference", preference.build, preference.NEEDS, lambda facts: facts.has_facets),
        TaskFamily("negative", negative.build, negative.NEEDS, lambda facts: True),
    )
}


@dataclass
class Mixture:
    examples: list[Example]
    counts: dict[str, int]
    """Examples per task after weighting."""
    skipped: dict[str, str]
    """Task -> why it did not run (disabled, or the data it needs is missing)."""


def build_mixture(ctx: TaskContext, config: TasksConfig, seed: int) -> Mixture:
    """Every enabled, applicable task's examples, resampled to ``weight x`` their count."""
    examples: list[Example] = []
    counts: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for name, family in TASKS.items():
        settings = getattr(config, name)
        if not settings.enabled:
            skipped[name] = "disabled in the config"
            continue
        if not family.applies(ctx.facts):
            skipped[name] = f"the dataset has no {family.needs}"
            continue
        rng = np.random.default_rng([seed, len(counts)])
        built = family.build(ctx, rng)
        wanted = int(round(settings.weight * len(built)))
        chosen = rng.choice(len(built), size=wanted, replace=wanted > len(built)) if built else []
        examples.extend(built[i] for i in chosen)
        counts[name] = wanted
    np.random.default_rng(seed).shuffle(examples)
    return Mixture(examples, counts, skipped)
