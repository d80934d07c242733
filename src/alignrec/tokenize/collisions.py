"""Make item -> code sequence a bijection by re-assigning last-level codes.

Items that share all ``L`` codes collide. Within each group of items sharing
the first ``L-1`` codes, the last-level codes are re-chosen by a minimum-cost
assignment (Hungarian algorithm, scipy) of the group's items to distinct
codewords, the cost being the squared distance from an item's last-level
residual to a codeword. Why this and not an extra level:

- the first ``L-1`` codes, which carry the coarse meaning and drive the
  constrained decoder's prefix tree, never change;
- only the last, finest code moves, and it moves to the cheapest free codeword
  (non-colliding items keep theirs: zero cost for them is optimal), so the
  added quantisation error is the least possible under the constraint;
- every item keeps exactly ``L`` tokens, so sequences stay equal-length.

It fails only if more than ``codebook_size`` items share a prefix, which the
error reports with the fix (a larger codebook or one more level).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from alignrec.errors import AlignrecError


def collision_stats(codes: np.ndarray) -> dict[str, Any]:
    """Share of items whose code sequence another item also has; largest group."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    per_item = counts[inverse.reshape(-1)]
    return {
        "collision_rate": float((per_item > 1).mean()) if len(codes) else 0.0,
        "colliding_items": int((per_item > 1).sum()),
        "distinct_sequences": int(len(counts)),
        "largest_group": int(counts.max()) if len(counts) else 0,
    }


def resolve_collisions(
    codes: np.ndarray, last_residual: np.ndarray, last_codebook: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes with unique rows (only last-level codes change) and what it cost."""
    codes = codes.copy()
    size = len(last_codebook)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for item, row in enumerate(codes[:, :-1].tolist()):
        groups[tuple(row)].append(item)
    moved, extra_error = 0, 0.0
    for prefix, items in groups.items():
        last = codes[items, -1]
        if len(np.unique(last)) == len(items):
            continue
        if len(items) > size:
            raise AlignrecError(
                f"{len(items)} items share the code prefix {list(prefix)} but the last level has only "
                f"{size} codes; raise tokenize.codebook_size or tokenize.levels"
            )
        residual = last_residual[items]
        cost = ((residual[:, None, :] - last_codebook[None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        new_last = np.empty(len(items), dtype=np.int64)
        new_last[rows] = cols
        changed = new_last != last
        moved += int(changed.sum())
        extra_error += float(cost[np.arange(len(items)), new_last].sum() - cost[np.arange(len(items)), last].sum())
        codes[items, -1] = new_last
    if len(np.unique(codes, axis=0)) != len(codes):
        raise AssertionError("collision resolution left duplicate code sequences")
    return codes, {"items_moved": moved, "added_sq_error_per_moved_item": extra_error / moved if moved else 0.0}
