"""How well codes use their codebooks, and whether they mean something.

Utilisation is the share of a level's codes used by at least one item;
perplexity is ``exp(entropy)`` of the level's code distribution (equal to the
codebook size when every code is used equally often). The semantic check asks
whether items that are close in text space share their first code more often
than chance: for each item, the share of its 10 nearest text neighbours (cosine)
with the same first code, against the chance a random other item does,
``sum_c n_c (n_c - 1) / (N (N - 1))``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from alignrec.tokenize.collisions import collision_stats

_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def level_stats(codes: np.ndarray, codebook_size: int) -> list[dict[str, Any]]:
    rows = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        p = counts[counts > 0] / counts.sum()
        rows.append({
            "level": level,
            "used": int((counts > 0).sum()),
            "utilisation": float((counts > 0).mean()),
            "perplexity": float(np.exp(-(p * np.log(p)).sum())),
            "max_items_per_code": int(counts.max()),
        })
    return rows


def neighbour_prefix_agreement(text: np.ndarray, first_codes: np.ndarray, k: int = 10) -> dict[str, float]:
    """Share of each item's k nearest text neighbours sharing its first code, vs chance."""
    unit = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    n = len(unit)
    k = min(k, n - 1)
    shares = np.empty(n)
    for start in range(0, n, 1024):
        sims = unit[start : start + 1024] @ unit.T
        rows = np.arange(start, min(start + 1024, n))
        sims[rows - start, rows] = -np.inf  # not its own neighbour
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        shares[rows] = (first_codes[top] == first_codes[rows, None]).mean(1)
    counts = np.bincount(first_codes)
    chance = float((counts * (counts - 1)).sum() / (n * (n - 1)))
    observed = float(shares.mean())
    return {"k": k, "observed": observed, "chance": chance, "lift": observed / chance if chance else float("inf")}


def published_comparison(
    published: dict[str, list[str]], item_ids: np.ndarray, codes: np.ndarray
) -> dict[str, Any] | None:
    """Our codes next to a published tokenization (LETTER's ``X.index.json``): its
    collisions, and how much our first level agrees with its first level (NMI)."""
    rows = []
    for item in item_ids:
        tokens = published.get(str(item))
        parsed = [_TOKEN.fullmatch(t) for t in tokens] if tokens else []
        if not parsed or not all(parsed):
            return None  # not every item has a parseable published code: nothing to compare
        rows.append([int(m.group(2)) for m in parsed if m])
    if len({len(r) for r in rows}) != 1:
        return None
    theirs = np.asarray(rows)
    return {
        "collisions": collision_stats(theirs),
        "levels": level_stats(theirs, int(theirs.max()) + 1),
        "first_level_nmi_with_ours": float(normalized_mutual_info_score(theirs[:, 0], codes[:, 0])),
    }
