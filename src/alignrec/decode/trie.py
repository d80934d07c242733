"""The prefix trie of every item's code sequence, compiled into tensors.

Nodes are numbered root (0) first, then depth by depth; one extra row, ``dead``, stands
for "no such prefix". ``children[node, k]`` is the node reached from ``node`` by code
``k`` of the next level, or ``dead``; ``dead``'s own children are ``dead``, so a beam
that has no prefix stays dead and gathering never sees a negative index.
``leaf_item[node]`` is the item whose full code sequence ends at ``node`` (-1
elsewhere), ``leaf_count[node]`` how many items lie below it, and ``item_path[i, l]``
the node item ``i`` reaches after ``l + 1`` codes. History exclusion subtracts the
excluded items from ``leaf_count`` along their paths, so a prefix whose every item is
excluded is pruned as soon as it appears, not only at the last level.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from alignrec.errors import AlignrecError


@dataclass(frozen=True)
class CodeTrie:
    children: torch.Tensor
    """[num_nodes + 1, K] int64: child node per code, ``dead`` where no item continues."""
    leaf_item: torch.Tensor
    """[num_nodes + 1] int64: the item ending at each depth-L node, -1 elsewhere."""
    leaf_count: torch.Tensor
    """[num_nodes + 1] int64: items below each node (0 for ``dead``)."""
    item_path: torch.Tensor
    """[N, L] int64: the node each item reaches after 1..L codes."""
    codes: torch.Tensor
    """[N, L] int64: item i's code sequence."""
    code_token_ids: torch.Tensor
    """[L, K] int64: LLM token id of code k at level l."""

    @classmethod
    def build(cls, codes: np.ndarray, code_token_ids: np.ndarray) -> CodeTrie:
        """Compile ``codes[i]`` (item i's code sequence) into the trie; codes must be distinct."""
        codes = np.asarray(codes)
        tokens = np.asarray(code_token_ids)
        if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
            raise AlignrecError(f"codes: expected a non-empty [items, levels] array, got shape {codes.shape}")
        if tokens.ndim != 2 or tokens.shape[0] != codes.shape[1]:
            raise AlignrecError(
                f"code_token_ids: expected shape [levels={codes.shape[1]}, codes], got {tokens.shape}"
            )
        if not (np.issubdtype(codes.dtype, np.integer) and np.issubdtype(tokens.dtype, np.integer)):
            raise AlignrecError("codes and code_token_ids must be integer arrays")
        levels, size = tokens.shape
        if codes.min() < 0 or codes.max() >= size:
            raise AlignrecError(f"codes: values must lie in [0, {size}) (one token per code), "
                                f"got {codes.min()}..{codes.max()}")
        if tokens.min() < 0 or len(np.unique(tokens)) != tokens.size:
            raise AlignrecError("code_token_ids: every (level, code) needs its own non-negative token id")
        codes = codes.astype(np.int64)
        _, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        clash = np.flatnonzero(first[inverse] != np.arange(len(codes)))
        if len(clash):
            item = int(clash[0])
            raise AlignrecError(
                f"codes: items {int(first[inverse[item]])} and {item} share the code sequence "
                f"{codes[item].tolist()}; resolve collisions in the tokenizer (every item needs distinct codes)"
            )

        # Depth d nodes are the distinct prefixes of length d, numbered after all shallower ones.
        item_path = np.empty(codes.shape, dtype=np.int64)
        parent = np.zeros(len(codes), dtype=np.int64)  # node of each item's prefix so far (root = 0)
        edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        next_id = 1
        for depth in range(levels):
            prefixes, rank = np.unique(codes[:, : depth + 1], axis=0, return_inverse=True)
            nodes = next_id + rank.reshape(-1)
            edges.append((parent, codes[:, depth], nodes))
            item_path[:, depth] = nodes
            parent = nodes
            next_id += len(prefixes)
        num_nodes = next_id
        dead = num_nodes
        children = np.full((num_nodes + 1, size), dead, dtype=np.int64)
        for parents, code, nodes in edges:
            children[parents, code] = nodes
        leaf_item = np.full(num_nodes + 1, -1, dtype=np.int64)
        leaf_item[item_path[:, -1]] = np.arange(len(codes))
        leaf_count = np.zeros(num_nodes + 1, dtype=np.int64)
        leaf_count[0] = len(codes)
        np.add.at(leaf_count, item_path.reshape(-1), 1)
        return cls(
            children=torch.from_numpy(children),
            leaf_item=torch.from_numpy(leaf_item),
            leaf_count=torch.from_numpy(leaf_count),
            item_path=torch.from_numpy(item_path),
            codes=torch.from_numpy(codes),
            code_token_ids=torch.from_numpy(tokens.astype(np.int64)),
        )

    @property
    def levels(self) -> int:
        return int(self.code_token_ids.shape[0])

    @property
    def codebook_size(self) -> int:
        return int(self.code_token_ids.shape[1])

    @property
    def num_items(self) -> int:
        return int(self.item_path.shape[0])

    @property
    def num_nodes(self) -> int:
        """Real nodes, root included (``dead`` is this index)."""
        return int(self.children.shape[0]) - 1

    @property
    def dead(self) -> int:
        return self.num_nodes

    @property
    def max_token_id(self) -> int:
        return int(self.code_token_ids.max())

    def to(self, device: torch.device | str) -> CodeTrie:
        """The same trie with every table on ``device``."""
        return CodeTrie(*(getattr(self, f.name).to(device) for f in fields(self)))

    def check_items(self, items: Collection[int], what: str) -> np.ndarray:
        """``items`` as a sorted, de-duplicated int64 array; an error naming ``what`` if one is not an item."""
        items = np.unique(np.fromiter(items, dtype=np.int64))
        if len(items) and (items.min() < 0 or items.max() >= self.num_items):
            bad = items[(items < 0) | (items >= self.num_items)][0]
            raise AlignrecError(f"{what}: item id {int(bad)} is not in [0, {self.num_items})")
        return items

    def alive_counts(self, exclude: Sequence[Collection[int]]) -> torch.Tensor:
        """[len(exclude), num_nodes + 1]: items below each node once ``exclude[p]`` is removed."""
        counts = self.leaf_count.unsqueeze(0).repeat(len(exclude), 1)
        rows, nodes = [], []
        for row, items in enumerate(exclude):
            items = self.check_items(items, f"exclude[{row}]")
            if len(items):
                path = self.item_path[torch.from_numpy(items).to(self.item_path.device)]
                root = torch.zeros(len(items), 1, dtype=torch.int64, device=path.device)
                path = torch.cat([root, path], dim=1).reshape(-1)
                rows.append(torch.full_like(path, row))
                nodes.append(path)
        if rows:
            index = (torch.cat(rows), torch.cat(nodes))
            counts.index_put_(index, torch.full_like(index[0], -1), accumulate=True)
        return counts

    def allowed_counts(
        self, allowed: Sequence[Collection[int]], exclude: Sequence[Collection[int]] | None = None
    ) -> torch.Tensor:
        """[len(allowed), num_nodes + 1]: items below each node counting only ``allowed[p]`` (less
        ``exclude[p]``): the trie of one user's candidates, for a search that may return nothing else."""
        counts = torch.zeros((len(allowed), self.num_nodes + 1), dtype=torch.int64, device=self.leaf_count.device)
        for row, items in enumerate(allowed):
            items = self.check_items(items, f"only[{row}]")
            if exclude is not None:
                items = np.setdiff1d(items, self.check_items(exclude[row], f"exclude[{row}]"))
            if len(items):
                path = self.item_path[torch.from_numpy(items).to(self.item_path.device)]
                counts[row, 0] = len(items)
                counts[row].index_put_((path.reshape(-1),), torch.ones(path.numel(), dtype=torch.int64,
                                                                        device=path.device), accumulate=True)
        return counts

    def item_tokens(self, item: int) -> list[int]:
        """The LLM token ids of ``item``'s code sequence."""
        return self.code_token_ids[torch.arange(self.levels), self.codes[item]].tolist()

    def allowed_tokens(self, prefix_token_ids: Sequence[int], exclude: Collection[int] = ()) -> list[int]:
        """Token ids that may follow ``prefix_token_ids`` (generated code tokens only), sorted.

        Empty when the prefix is complete, is not a prefix of any item, or leads only to
        excluded items. A plain-Python reference for ``generate(prefix_allowed_tokens_fn=...)``.
        """
        counts = self.alive_counts([exclude])[0] if len(exclude) else self.leaf_count
        node = 0
        if len(prefix_token_ids) >= self.levels:
            return []
        for level, token in enumerate(prefix_token_ids):
            hits = (self.code_token_ids[level] == int(token)).nonzero()
            if len(hits) == 0:
                return []
            node = int(self.children[node, int(hits[0, 0])])
            if counts[node] <= 0:
                return []
        level = len(prefix_token_ids)
        alive = counts[self.children[node]] > 0
        return sorted(self.code_token_ids[level][alive].tolist())

    def items_of(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token sequences [..., L] -> their items [...], -1 where a sequence is no item's codes."""
        if token_ids.shape[-1] != self.levels:
            return torch.full(token_ids.shape[:-1], -1, dtype=torch.int64, device=token_ids.device)
        beyond = self.max_token_id + 1  # one slot for every token that is no code
        token_ids = torch.where((token_ids >= 0) & (token_ids < beyond), token_ids, beyond)
        node = torch.zeros(token_ids.shape[:-1], dtype=torch.int64, device=token_ids.device)
        for level in range(self.levels):
            code_of = torch.full((beyond + 1,), -1, dtype=torch.int64, device=token_ids.device)
            code_of[self.code_token_ids[level]] = torch.arange(self.codebook_size, device=token_ids.device)
            code = code_of[token_ids[..., level]]
            node = torch.where(code >= 0, self.children[node, code.clamp(min=0)], self.dead)
        return self.leaf_item[node]
