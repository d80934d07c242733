"""Negative sampling: pick the item the user chooses next, or the one they will not.

From a training window ``w`` of one user (history = all but the last items):

- choose (half the examples): candidates = the true next item + ``negatives`` items
  the user never interacted with (held-out items included, so a user's own validation
  or test item is never called a negative), drawn uniformly; target = the true item;
- reject: candidates = the next (up to) three true items + one such negative;
  target = the negative.

Candidates are shuffled. Everything comes from the training split.
"""

from __future__ import annotations

import numpy as np

from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.tasks.example import Example, item, pick, text
from alignrec.llm.tasks.sequential import history_pieces

NEEDS = "nothing"
CHOOSE = (" Candidates:", " Options:")
CHOOSE_QUESTION = (" Which one will the user pick next?", " The user's next choice among them:")
REJECT_QUESTION = (" Which one will the user not choose?", " The one they will skip:")
CONTEXT_ITEMS = 10
POSITIVES_IN_REJECT = 3


def sample_unseen(rng: np.random.Generator, seen: set[int], num_items: int, count: int) -> list[int]:
    """``count`` distinct items outside ``seen``, uniformly (rejection sampling)."""
    available = num_items - len(seen)
    count = min(count, available)
    chosen: list[int] = []
    while len(chosen) < count:
        candidate = int(rng.integers(num_items))
        if candidate not in seen and candidate not in chosen:
            chosen.append(candidate)
    return chosen


def build(ctx: TaskContext, rng: np.random.Generator) -> list[Example]:
    examples = []
    for user, sequence in enumerate(ctx.train_sequences):
        seen = ctx.seen[user]
        for window in ctx.windows(sequence):
            if len(window) < 2:
                continue
            cut = max(1, len(window) - POSITIVES_IN_REJECT) if rng.random() >= 0.5 else len(window) - 1
            history, future = window[:cut][-CONTEXT_ITEMS:], [int(i) for i in window[cut:]]
            rejecting = len(future) > 1
            if rejecting:
                target = sample_unseen(rng, seen, ctx.num_items, 1)
                candidates = future + target
            else:
                target = future[:1]
                candidates = target + sample_unseen(rng, seen, ctx.num_items, ctx.negatives)
            if not target:
                continue
            rng.shuffle(candidates)
            question = pick(rng, REJECT_QUESTION if rejecting else CHOOSE_QUESTION)
            examples.append(Example("negative", [
                text("A user chose:"), *history_pieces(history, len(history)), text(pick(rng, CHOOSE)),
                *[item(c) for c in candidates], text(question), item(target[0], target=True)], user))
    return examples
