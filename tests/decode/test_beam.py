"""Constrained beam search: transformers' beam search results, only real items, fail closed.

The reference is ``generate(num_beams=B, prefix_allowed_tokens_fn=<trie>)`` with
``length_penalty=0`` (alignrec.decode.reference says why that ranks by summed log-probability).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import MistralConfig, MistralForCausalLM

from alignrec.backbone import tiny_random_llama
from alignrec.decode import CodeTrie, constrained_beam_search, search_and_score
from alignrec.decode.beam import shares_prompt_cache
from alignrec.decode.reference import generate_top_k
from alignrec.errors import AlignrecError

BYTE_VOCAB = 259
PAD = 0


@functools.cache
def model_with_codes(extra: int, seed: int = 0) -> torch.nn.Module:
    """The tiny Llama with ``extra`` new tokens whose rows are large enough to spread the scores.

    At the default init (std 0.02) every code is almost equally likely and near-ties
    would make beam order depend on float rounding; std 1 keeps candidates apart.
    """
    model = tiny_random_llama(seed)
    model.resize_token_embeddings(BYTE_VOCAB + extra, mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            matrix[BYTE_VOCAB:] = torch.randn(extra, matrix.shape[1], generator=generator)
    return model.eval()


def random_codes(rng: np.random.Generator, n: int, levels: int, size: int) -> np.ndarray:
    return np.array(np.unravel_index(rng.choice(size**levels, n, replace=False), (size,) * levels)).T


def level_tokens(levels: int, size: int) -> np.ndarray:
    return BYTE_VOCAB + np.arange(levels * size).reshape(levels, size)


def prompts_of(rng: np.random.Generator, lengths: list[int]) -> list[list[int]]:
    return [rng.integers(3, BYTE_VOCAB, size=n).tolist() for n in lengths]


@pytest.mark.parametrize(("n", "excluded"), [(150, 0), (150, 40), (5, 0), (9, 4)])
def test_same_top_k_as_transformers_generate(n: int, excluded: int) -> None:
    levels, size, beams = 3, 6, 8
    rng = np.random.default_rng(n + excluded)
    trie = CodeTrie.build(random_codes(rng, n, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [3, 11, 6, 17, 1])
    exclude = [rng.choice(n, excluded, replace=False) for _ in prompts] if excluded else None
    items, scores = constrained_beam_search(model, prompts, trie, beams=beams, k=beams, pad_token_id=PAD,
                                            exclude=exclude)
    ref_items, ref_scores = generate_top_k(model, prompts, trie, beams=beams, k=beams, pad_token_id=PAD,
                                           exclude=exclude)
    assert ((ref_items >= 0).sum(axis=1) == min(beams, n - excluded)).all()
    assert np.array_equal(items, ref_items)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)  # -inf where both have no item


def test_batching_order_and_k_do_not_change_the_lists() -> None:
    levels, size = 3, 6
    rng = np.random.default_rng(7)
    trie = CodeTrie.build(random_codes(rng, 100, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [9, 2, 14, 5, 5, 12, 1])
    full, full_scores = constrained_beam_search(model, prompts, trie, beams=10, k=10, pad_token_id=PAD)
    small, small_scores = constrained_beam_search(model, prompts, trie, beams=10, k=4, pad_token_id=PAD,
                                                  batch_size=2)
    assert np.array_equal(small, full[:, :4])
    np.testing.assert_allclose(small_scores, full_scores[:, :4], atol=1e-5)
    one, _ = constrained_beam_search(model, prompts[2:3], trie, beams=10, k=10, pad_token_id=PAD)
    assert np.array_equal(one[0], full[2])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 5), st.integers(1, 12))
def test_random_tries_give_valid_distinct_sorted_items(seed: int, levels: int, size: int, beams: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, size**levels + 1))
    vocab = BYTE_VOCAB + 15
    tokens = rng.permutation(vocab)[: levels * size].reshape(levels, size)  # codes may reuse byte tokens
    trie = CodeTrie.build(random_codes(rng, n, levels, size), tokens)
    prompts = prompts_of(rng, rng.integers(1, 8, size=int(rng.integers(1, 5))).tolist())
    exclude = [rng.choice(n, int(rng.integers(0, n + 1)), replace=False) for _ in prompts]
    k = int(rng.integers(1, beams + 1))
    items, scores = constrained_beam_search(model_with_codes(15), prompts, trie, beams=beams, k=k,
                                            pad_token_id=PAD, exclude=exclude, batch_size=int(rng.integers(1, 4)))
    assert items.shape == scores.shape == (len(prompts), k)
    assert items.dtype == np.int64 and scores.dtype == np.float32
    for row, excluded in enumerate(exclude):
        real = items[row] >= 0
        assert real.sum() == min(k, n - len(excluded))  # -1 only when nothing else is left
        assert real[: real.sum()].all()  # real items first
        chosen = items[row][real]
        assert len(set(chosen.tolist())) == len(chosen)
        assert not set(chosen.tolist()) & set(excluded.tolist())
        assert np.isfinite(scores[row][real]).all() and np.isneginf(scores[row][~real]).all()
        assert (np.diff(scores[row][real]) <= 0).all()
        assert (scores[row][real] <= 0).all()


def small_setup() -> tuple[torch.nn.Module, CodeTrie, list[list[int]]]:
    rng = np.random.default_rng(1)
    trie = CodeTrie.build(random_codes(rng, 20, 3, 4), level_tokens(3, 4))
    return model_with_codes(12), trie, prompts_of(rng, [4, 7])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beams": 4, "k": 5}, "need 1 <= k <= beams"),
        ({"beams": 4, "k": 0}, "need 1 <= k <= beams"),
        ({"beams": 4, "k": 2, "batch_size": 0}, "batch_size must be >= 1"),
        ({"beams": 4, "k": 2, "exclude": [[1]]}, "exclude has 1 rows for 2 prompts"),
        ({"beams": 4, "k": 2, "exclude": [[1], [20]]}, r"exclude\[1\]: item id 20 is not in \[0, 20\)"),
        ({"beams": 4, "k": 2, "softmax": "codes"}, "softmax must be one of level, vocabulary, got 'codes'"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    model, trie, prompts = small_setup()
    with pytest.raises(AlignrecError, match=message):
        constrained_beam_search(model, prompts, trie, pad_token_id=PAD, **options)


def test_empty_prompts_and_tokens_outside_the_vocabulary_are_refused() -> None:
    model, trie, prompts = small_setup()
    with pytest.raises(AlignrecError, match="prompt 1 is empty"):
        constrained_beam_search(model, [prompts[0], []], trie, beams=4, k=2, pad_token_id=PAD)
    too_far = CodeTrie.build(np.array([[0], [1]]), np.array([[3, BYTE_VOCAB + 12]]))
    with pytest.raises(AlignrecError, match="outside the model's vocabulary"):
        constrained_beam_search(model, prompts, too_far, beams=4, k=2, pad_token_id=PAD)


def test_a_beam_without_a_valid_code_fails_closed() -> None:
    model, trie, prompts = small_setup()
    children = trie.children.clone()
    first = int(trie.item_path[0, 0])
    children[first] = trie.dead  # the trie still counts items below `first`, but no code leads there
    broken = dataclasses.replace(trie, children=children)
    with pytest.raises(AlignrecError, match="has no valid code at level 1"):
        constrained_beam_search(model, prompts, broken, beams=4, k=4, pad_token_id=PAD)


def test_a_training_model_is_searched_in_eval_mode_and_given_back_training() -> None:
    model, trie, prompts = small_setup()
    expected, _ = constrained_beam_search(model, prompts, trie, beams=4, k=4, pad_token_id=PAD)
    model.train()
    try:
        items, _ = constrained_beam_search(model, prompts, trie, beams=4, k=4, pad_token_id=PAD)
        assert model.training
    finally:
        model.eval()
    assert np.array_equal(items, expected)


def test_a_sliding_window_model_matches_generate_too() -> None:
    """Another architecture and cache layer kind (DynamicSlidingWindowLayer) than Llama's."""
    levels, size = 3, 5
    config = MistralConfig(vocab_size=BYTE_VOCAB + levels * size, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, sliding_window=4,
                           max_position_embeddings=64)
    torch.manual_seed(0)
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight[BYTE_VOCAB:] *= 50  # spread the code scores (see model_with_codes)
    rng = np.random.default_rng(3)
    trie = CodeTrie.build(random_codes(rng, 60, levels, size), level_tokens(levels, size))
    prompts = prompts_of(rng, [2, 9, 6])  # longer than the window
    items, scores = constrained_beam_search(model, prompts, trie, beams=6, k=6, pad_token_id=PAD)
    ref_items, ref_scores = generate_top_k(model, prompts, trie, beams=6, k=6, pad_token_id=PAD)
    assert np.array_equal(items, ref_items)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)



def test_candidate_scores_are_the_beams_scores_and_any_items_exact_score() -> None:
    levels, size, beams = 3, 6, 8
    rng = np.random.default_rng(11)
    n = 120
    trie = CodeTrie.build(random_codes(rng, n, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [5, 13, 2])
    exclude = [rng.choice(n, 10, replace=False) for _ in prompts]
    items, scores = constrained_beam_search(model, prompts, trie, beams=beams, k=beams, pad_token_id=PAD,
                                            exclude=exclude)
    others = rng.integers(0, n, size=(len(prompts), 5))
    asked = np.concatenate([items, others, np.full((len(prompts), 1), -1)], axis=1)
    same_items, same_scores, scored = search_and_score(model, prompts, trie, beams=beams, k=beams,
                                                       pad_token_id=PAD, exclude=exclude, candidates=asked,
                                                       batch_size=2)
    assert np.array_equal(same_items, items)
    np.testing.assert_allclose(same_scores, scores, atol=1e-5)  # another batch size: rounding only
    np.testing.assert_allclose(scored[:, :beams], scores, atol=1e-4)  # a beam's score is its item's
    assert np.isneginf(scored[:, -1]).all()  # a pad has no score
    # The reference: one forward per candidate over prompt + its whole code sequence.
    for row, prompt in enumerate(prompts):
        for column in range(beams, beams + 5):
            codes = trie.item_tokens(int(asked[row, column]))
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([prompt + codes])).logits[0].log_softmax(-1)
            expected = sum(float(logits[len(prompt) - 1 + level, token]) for level, token in enumerate(codes))
            assert scored[row, column] == pytest.approx(expected, abs=1e-4)


def test_only_restricts_the_search_to_each_prompts_own_items() -> None:
    levels, size = 3, 6
    rng = np.random.default_rng(5)
    n = 100
    trie = CodeTrie.build(random_codes(rng, n, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [4, 9])
    only = [rng.choice(n, 12, replace=False), rng.choice(n, 3, replace=False)]
    exclude = [only[0][:2], []]
    items, scores = constrained_beam_search(model, prompts, trie, beams=6, k=6, pad_token_id=PAD,
                                            only=only, exclude=exclude)
    assert set(items[0].tolist()) <= set(only[0][2:].tolist())
    assert set(items[1][:3].tolist()) == set(only[1].tolist()) and (items[1][3:] == -1).all()
    # With beams as wide as the candidates, the search is an exact re-ranking of them.
    _, _, exact = search_and_score(model, prompts[1:], trie, beams=6, k=3, pad_token_id=PAD,
                                   candidates=only[1][None, :])
    order = np.argsort(-exact[0], kind="stable")
    assert items[1][:3].tolist() == only[1][order].tolist()
    np.testing.assert_allclose(scores[1][:3], exact[0][order], atol=1e-4)


def test_a_peft_wrapped_model_is_given_its_base_models_cache_keyword() -> None:
    import copy
    import warnings

    from peft import LoraConfig, get_peft_model

    model, trie, prompts = small_setup()
    expected, _ = constrained_beam_search(model, prompts, trie, beams=4, k=4, pad_token_id=PAD)
    wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # a deprecated keyword would warn
        items, _ = constrained_beam_search(wrapped.eval(), prompts, trie, beams=4, k=4, pad_token_id=PAD)
    assert np.array_equal(items, expected)  # LoRA at init changes nothing


@pytest.mark.parametrize("excluded", [0, 30])
def test_the_shared_prompt_cache_gives_the_per_beam_copies_lists_and_scores(excluded: int) -> None:
    levels, size, beams, n = 3, 6, 8, 150
    rng = np.random.default_rng(21 + excluded)
    trie = CodeTrie.build(random_codes(rng, n, levels, size), level_tokens(levels, size))
    model = model_with_codes(levels * size)
    prompts = prompts_of(rng, [3, 16, 1, 9, 12])
    exclude = [rng.choice(n, excluded, replace=False) for _ in prompts] if excluded else None
    asked = np.concatenate([rng.integers(0, n, size=(len(prompts), 7)), np.full((len(prompts), 1), -1)], axis=1)
    found = {shared: search_and_score(model, prompts, trie, beams=beams, k=beams, pad_token_id=PAD, exclude=exclude,
                                      candidates=asked, batch_size=3, shared_cache=shared) for shared in (True, False)}
    (items, scores, scored), (copied_items, copied_scores, copied_scored) = found[True], found[False]
    assert np.array_equal(items, copied_items)
    np.testing.assert_allclose(scores, copied_scores, atol=1e-5)
    np.testing.assert_allclose(scored, copied_scored, atol=1e-5)  # -inf at the pad on both


def test_the_shared_prompt_cache_never_copies_a_prompt_to_the_beams() -> None:
    model, trie, prompts = small_setup()
    rows: list[int] = []
    hook = model.register_forward_pre_hook(lambda _, args, kwargs: rows.append(kwargs["input_ids"].shape[0]),
                                           with_kwargs=True)
    try:
        for shared in (True, False):
            rows.clear()
            search_and_score(model, prompts, trie, beams=4, k=4, pad_token_id=PAD, shared_cache=shared,
                             candidates=np.zeros((len(prompts), 3), dtype=np.int64))
            # prefill, two levels of beams and the candidates' codes: batch rows of the prompts alone when
            # shared; copied: the candidates' codes first, from a copy of the prompts' cache per candidate
            assert rows == ([2, 2, 2, 2] if shared else [2, 6, 8, 8])
        found, _ = constrained_beam_search(model, prompts, trie, beams=4, k=4, pad_token_id=PAD)
        rows.clear()
        items, scores, scored = search_and_score(model, prompts, trie, beams=4, k=4, pad_token_id=PAD,
                                                 candidates=found[:, ::-1].copy())
        assert rows == [2, 2, 2]  # candidates the beams found need no forward of their own
        assert np.array_equal(items, found) and np.array_equal(scored, scores[:, ::-1])  # their beams' scores
    finally:
        hook.remove()
    sliding = MistralForCausalLM(MistralConfig(vocab_size=300, hidden_size=16, intermediate_size=32,
                                               num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                               sliding_window=4))
    assert shares_prompt_cache(model) and not shares_prompt_cache(sliding)  # a window drops the tree's columns
