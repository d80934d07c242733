"""Tiny synthetic datasets shared by the unit tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alignrec.data.build import FilterOptions, build_dataset
from alignrec.data.dataset import SequenceDataset
from alignrec.data.raw import RawData, RawInteractions


def make_dataset(
    sequences: dict[str, list[str]],
    item_text: dict[str, dict[str, str]] | None = None,
    name: str = "tiny",
) -> SequenceDataset:
    """A dataset whose users have exactly these item sequences (in this order)."""
    users = [u for u, seq in sequences.items() for _ in seq]
    items = [i for seq in sequences.values() for i in seq]
    raw = RawData(
        name=name,
        interactions=RawInteractions(users, items, None, None, lambda i: f"row {i}"),
        item_text=item_text,
        item_source="items" if item_text is not None else None,
    )
    return build_dataset(raw, FilterOptions(), {"synthetic": name})


def cyclic_dataset(num_users: int = 200, num_items: int = 60, seed: int = 0) -> SequenceDataset:
    """Every user walks the cycle 0 -> 1 -> ... -> N-1 -> 0 from a random start.

    The next item is fully determined by the last one: a sequence model can
    learn it, popularity cannot.
    """
    rng = np.random.default_rng(seed)
    sequences = {}
    for user in range(num_users):
        start, length = rng.integers(num_items), rng.integers(8, 16)
        sequences[str(user)] = [str((start + step) % num_items) for step in range(length)]
    return make_dataset(sequences, name="cyclic")


@pytest.fixture
def tiny() -> SequenceDataset:
    return make_dataset(
        {
            "u1": ["a", "b", "c", "d"],
            "u2": ["b", "c", "e"],
            "u3": ["a", "e"],
        },
        item_text={k: {"title": f"Title {k.upper()}"} for k in "abcde"},
    )


@pytest.fixture
def lcrec_dir(tmp_path):
    """An ID-only LC-Rec dataset: 40 users walking a 12-item cycle."""
    folder = tmp_path / "toy"
    folder.mkdir()
    inter = {str(u): [(u + step) % 12 for step in range(6 + u % 4)] for u in range(40)}
    (folder / "Toy.inter.json").write_text(json.dumps(inter))
    return folder
