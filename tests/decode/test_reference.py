"""The peer path's constraint: the trie's answers per generated prefix, per batch row."""

from __future__ import annotations

import numpy as np
import torch

from alignrec.decode.reference import prefix_allowed_tokens_fn
from alignrec.decode.trie import CodeTrie


def test_the_constraint_reads_only_generated_tokens_and_each_rows_exclusions() -> None:
    trie = CodeTrie.build(np.array([[0, 1], [0, 2], [2, 0]]), np.array([[10, 11, 12], [20, 21, 22]]))
    allowed = prefix_allowed_tokens_fn(trie, prompt_width=3, exclude=[[], [0, 1]])
    assert allowed(0, torch.tensor([5, 10, 12])) == [10, 12]  # the prompt is not a prefix
    assert allowed(1, torch.tensor([5, 10, 12])) == [12]
    assert allowed(0, torch.tensor([5, 10, 12, 10])) == [21, 22]
    assert allowed(1, torch.tensor([7, 7, 7, 10])) == []  # every item below is excluded
    plain = prefix_allowed_tokens_fn(trie, prompt_width=1)
    assert plain(4, torch.tensor([1, 12])) == [20]
