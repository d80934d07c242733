"""Code scoring (``decode/scoring.py``): a code head over the code rows alone gives the whole head's lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alignrec.decode import CodeTrie, search_and_score
from alignrec.errors import AlignrecError
from tests.decode.test_beam import PAD, level_tokens, model_with_codes, prompts_of, random_codes


def rows_head(model: torch.nn.Module, trie: CodeTrie, calls: list[int] | None = None):
    """A code head from the model's own head rows (what ``alignrec.llm.head.code_head`` builds for a run)."""
    weight = model.get_output_embeddings().weight
    rows = weight[trie.code_token_ids.flatten()]

    def head(hidden: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(hidden.shape[-2])
        return F.linear(hidden, rows)

    return head


@pytest.mark.parametrize("shared", [True, False], ids=["shared-cache", "copied-cache"])
def test_a_code_head_gives_the_level_softmax_lists_and_scores_of_the_whole_head(shared: bool) -> None:
    levels, size, beams, n = 3, 6, 8, 150
    rng = np.random.default_rng(4)
    trie = CodeTrie.build(random_codes(rng, n, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [3, 16, 1, 9, 12])
    asked = np.concatenate([rng.integers(0, n, size=(len(prompts), 7)), np.full((len(prompts), 1), -1)], axis=1)
    options = {"beams": beams, "k": beams, "pad_token_id": PAD, "candidates": asked, "batch_size": 3,
               "shared_cache": shared, "softmax": "level"}
    whole = search_and_score(model, prompts, trie, **options)
    calls: list[int] = []
    head = search_and_score(model, prompts, trie, code_head=rows_head(model, trie, calls), **options)
    assert np.array_equal(whole[0], head[0])
    np.testing.assert_allclose(head[1], whole[1], atol=1e-5)
    np.testing.assert_allclose(head[2], whole[2], atol=1e-5)
    # the head read the prompt's last position only, then the beams' and candidates' code positions
    assert calls[0] == 1 and len(calls) >= levels
    vocabulary = search_and_score(model, prompts, trie, **{**options, "softmax": "vocabulary"})
    assert not np.allclose(vocabulary[1], whole[1])  # the normalisations differ: the test can tell them apart


def test_a_code_head_needs_the_level_softmax_and_the_trie_s_width() -> None:
    rng = np.random.default_rng(0)
    trie = CodeTrie.build(random_codes(rng, 12, 2, 4), level_tokens(2, 4))
    model = model_with_codes(8)
    prompts = prompts_of(rng, [3, 5])
    with pytest.raises(AlignrecError, match="pass softmax='level' or no code_head"):
        search_and_score(model, prompts, trie, beams=4, k=4, pad_token_id=PAD, code_head=rows_head(model, trie))
    narrow = lambda hidden: rows_head(model, trie)(hidden)[..., :5]  # noqa: E731
    with pytest.raises(AlignrecError, match="the code head gave 5 logits, not the trie's 2 x 4 codes"):
        search_and_score(model, prompts, trie, beams=4, k=4, pad_token_id=PAD, softmax="level", code_head=narrow)
