"""``alignrec tokenize inspect``: one item's codes and its neighbours in code space.

Neighbours are ranked by the length of the code prefix they share with the
item (what a prefix-tree decoder sees), then by the distance between the two
items' reconstructed code vectors (sum of their codewords).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alignrec.errors import AlignrecError
from alignrec.tokenize.artifacts import TokenizerArtifact
from alignrec.tokenize.residual import reconstruct


@dataclass
class Neighbour:
    item_id: str
    title: str
    codes: list[int]
    shared_prefix: int
    distance: float


class CodeSpace:
    """Every item's point in code space, computed once: the web page asks for neighbours per click."""

    def __init__(self, artifact: TokenizerArtifact) -> None:
        self.artifact = artifact
        self.ids = [str(i) for i in artifact.item_ids]
        self.rows = {item_id: row for row, item_id in enumerate(self.ids)}
        self.points = reconstruct(artifact.codes, artifact.codebooks)

    def row(self, item_id: str) -> int:
        if item_id not in self.rows:
            raise AlignrecError(f"item {item_id!r} is not in this tokenizer output ({len(self.ids)} items); "
                                "give an original item id, as in codes.json")
        return self.rows[item_id]

    def nearest(self, row: int, k: int = 10) -> list[Neighbour]:
        """The ``k`` items sharing the longest code prefix with ``row``, then the closest."""
        codes = self.artifact.codes
        shared = np.cumprod(codes == codes[row], axis=1).sum(1)
        distance = np.linalg.norm(self.points - self.points[row], axis=1)
        order = np.lexsort((np.arange(len(self.ids)), distance, -shared))
        titles = self.artifact.titles
        return [
            Neighbour(self.ids[j], str(titles[j]), codes[j].tolist(), int(shared[j]), float(distance[j]))
            for j in order[: k + 1] if j != row
        ][:k]


def nearest_in_code_space(artifact: TokenizerArtifact, item_id: str, k: int = 10) -> tuple[int, list[Neighbour]]:
    space = CodeSpace(artifact)
    row = space.row(item_id)
    return row, space.nearest(row, k)


def format_inspection(artifact: TokenizerArtifact, item_id: str, k: int = 10) -> str:
    row, neighbours = nearest_in_code_space(artifact, item_id, k)
    lines = [
        f"item {item_id}: {artifact.titles[row]}",
        f"codes {artifact.codes[row].tolist()}  tokens {''.join(artifact.item_tokens(row))}",
        f"nearest {len(neighbours)} items in code space (shared prefix, distance):",
    ]
    for n in neighbours:
        lines.append(f"  {n.item_id:>10}  {n.codes}  prefix {n.shared_prefix}  d={n.distance:.3f}  {n.title}")
    return "\n".join(lines)
