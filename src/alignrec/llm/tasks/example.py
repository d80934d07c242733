"""What every alignment task produces: a sequence of text and item pieces, some of them targets.

An item piece stands for the item's code tokens (``<a_12><b_3><c_7><d_0>``), so one
example can train on several items at once (the sequential task labels every item
of a history window after the first). Pieces are tokenized one by one, the same way
at training and at recommendation time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Piece:
    text: str = ""
    item: int = -1
    """An internal item id (its code tokens), or -1 for a text piece."""
    target: bool = False
    """Trained on (its tokens get labels); otherwise context only."""

    @property
    def is_item(self) -> bool:
        return self.item >= 0


def text(value: str, target: bool = False) -> Piece:
    return Piece(text=value, target=target)


def item(value: int, target: bool = False) -> Piece:
    return Piece(item=int(value), target=target)


@dataclass
class Example:
    task: str
    pieces: list[Piece] = field(default_factory=list)
    user: int = -1
    """The user whose history the example reads (-1 for catalogue tasks)."""

    def render(self, item_name: Callable[[int], str]) -> tuple[str, str]:
        """(context, targets) as readable strings; targets joined by ``|`` in order."""
        context = "".join(p.text if not p.is_item else item_name(p.item) for p in self.pieces if not p.target)
        targets = "|".join(p.text if not p.is_item else item_name(p.item) for p in self.pieces if p.target)
        return context, targets

    def target_items(self) -> list[int]:
        return [p.item for p in self.pieces if p.target and p.is_item]

    def context_items(self) -> list[int]:
        return [p.item for p in self.pieces if not p.target and p.is_item]


def pick(rng: np.random.Generator, templates: tuple[str, ...]) -> str:
    return templates[int(rng.integers(len(templates)))]
