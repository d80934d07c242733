"""The compiled code trie: exactly the items' prefixes, exclusion prunes, bad codes are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alignrec.decode.trie import CodeTrie
from alignrec.errors import AlignrecError

TOKENS = np.array([[10, 11, 12], [20, 21, 22]])  # level l, code k -> token 10 * (l + 1) + k


def small() -> CodeTrie:
    return CodeTrie.build(np.array([[0, 1], [0, 2], [2, 0]]), TOKENS)


def test_tables_follow_the_codes() -> None:
    trie = small()
    assert (trie.levels, trie.codebook_size, trie.num_items, trie.num_nodes) == (2, 3, 3, 6)  # root, 2 + 3
    assert trie.allowed_tokens([]) == [10, 12]
    assert trie.allowed_tokens([10]) == [21, 22]
    assert trie.allowed_tokens([12]) == [20]
    assert trie.allowed_tokens([11]) == [] and trie.allowed_tokens([10, 21]) == []
    assert trie.allowed_tokens([20]) == []  # a level-1 token at level 0 is no code
    assert [trie.item_tokens(i) for i in range(3)] == [[10, 21], [10, 22], [12, 20]]
    assert sorted(trie.leaf_item[trie.leaf_item >= 0].tolist()) == [0, 1, 2]
    assert trie.leaf_count[0] == 3 and trie.leaf_count[trie.dead] == 0
    assert (trie.children[trie.dead] == trie.dead).all()


def test_token_sequences_map_back_to_items() -> None:
    trie = small()
    sequences = torch.tensor([[[12, 20], [10, 22]], [[10, 20], [20, 10]], [[-5, 21], [10, 999]]])
    assert trie.items_of(sequences).tolist() == [[2, 1], [-1, -1], [-1, -1]]
    assert trie.items_of(torch.tensor([[10]])).tolist() == [-1]  # too short to be an item


def test_exclusion_prunes_prefixes_whose_items_are_all_excluded() -> None:
    trie = small()
    assert trie.allowed_tokens([], exclude={0, 1}) == [12]
    assert trie.allowed_tokens([10], exclude={0}) == [22]
    assert trie.allowed_tokens([], exclude={0, 1, 2}) == []
    counts = trie.alive_counts([[], [2, 2], np.array([0, 1])])
    assert counts[:, 0].tolist() == [3, 2, 1]  # a repeated id is excluded once
    with pytest.raises(AlignrecError, match=r"exclude\[0\]: item id 3"):
        trie.alive_counts([[3]])


def test_two_items_with_one_code_sequence_are_named() -> None:
    with pytest.raises(AlignrecError, match="items 1 and 3 share the code sequence \\[0, 2\\]"):
        CodeTrie.build(np.array([[0, 1], [0, 2], [2, 0], [0, 2]]), TOKENS)


@pytest.mark.parametrize(
    ("codes", "tokens", "message"),
    [
        (np.array([[0, 3]]), TOKENS, r"values must lie in \[0, 3\)"),
        (np.array([[0, -1]]), TOKENS, r"values must lie in \[0, 3\)"),
        (np.array([[0, 1, 2]]), TOKENS, "expected shape \\[levels=3"),
        (np.zeros((0, 2), dtype=int), TOKENS, "non-empty"),
        (np.array([[0, 1]]), np.array([[1, 2, 3], [3, 4, 5]]), "its own non-negative token id"),
        (np.array([[0.0, 1.0]]), TOKENS, "integer arrays"),
    ],
)
def test_bad_tables_are_refused(codes: np.ndarray, tokens: np.ndarray, message: str) -> None:
    with pytest.raises(AlignrecError, match=message):
        CodeTrie.build(codes, tokens)


def walk(trie: CodeTrie, exclude: set[int]) -> set[tuple[int, ...]]:
    """Every complete token sequence reachable through allowed_tokens."""
    done, stack = set(), [()]
    while stack:
        prefix = stack.pop()
        if len(prefix) == trie.levels:
            done.add(prefix)
            continue
        stack.extend(prefix + (t,) for t in trie.allowed_tokens(list(prefix), exclude=exclude))
    return done


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_the_trie_spells_exactly_the_items_not_excluded(seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels, size = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    n = int(rng.integers(1, size**levels + 1))
    codes = np.array(np.unravel_index(rng.choice(size**levels, n, replace=False), (size,) * levels)).T
    tokens = rng.permutation(1000)[: levels * size].reshape(levels, size)
    trie = CodeTrie.build(codes, tokens)
    exclude = set(rng.choice(n, int(rng.integers(0, n + 1)), replace=False).tolist())
    expected = {tuple(trie.item_tokens(i)) for i in range(n) if i not in exclude}
    assert walk(trie, exclude) == expected
    assert {tuple(tokens[np.arange(levels), c]) for c in codes} == {tuple(trie.item_tokens(i)) for i in range(n)}
    counts = trie.alive_counts([sorted(exclude)])[0]
    assert int(counts[0]) == n - len(exclude)
    assert torch.equal(trie.leaf_item[trie.item_path[:, -1]], torch.arange(n))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_a_trie_of_allowed_items_counts_as_excluding_all_the_others(seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels, size = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    n = int(rng.integers(1, size**levels + 1))
    codes = np.array(np.unravel_index(rng.choice(size**levels, n, replace=False), (size,) * levels)).T
    trie = CodeTrie.build(codes, rng.permutation(1000)[: levels * size].reshape(levels, size))
    allowed = rng.choice(n, int(rng.integers(0, n + 1)), replace=False)
    exclude = rng.choice(n, int(rng.integers(0, n + 1)), replace=False)
    kept = np.setdiff1d(allowed, exclude)
    others = np.setdiff1d(np.arange(n), kept)
    assert torch.equal(trie.allowed_counts([allowed], [exclude])[0], trie.alive_counts([others])[0])
    assert torch.equal(trie.allowed_counts([np.arange(n)])[0], trie.leaf_count)


def test_allowed_items_outside_the_trie_are_named() -> None:
    with pytest.raises(AlignrecError, match=r"only\[0\]: item id 7"):
        small().allowed_counts([[7]])
