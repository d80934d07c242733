"""The code tokens' popularity prior (``alignrec.llm.prior``): hand-computed values, training counts only,
the same bias in the training forward (through peft, tied or untied head) and in a loaded run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alignrec.llm.prior import attach_prior, code_log_prior, training_counts
from alignrec.llm.vocab import CodeVocabulary
from tests.conftest import make_dataset
from tests.llm.conftest import tiny_artifact, tiny_llm_config


def test_the_prior_by_hand() -> None:
    # items (level-0 code, level-1 code): (0, 1), (0, 0), (1, 1) with 3, 1 and 0 interactions
    prior = code_log_prior(np.array([[0, 1], [0, 0], [1, 1]]), np.array([3, 1, 0]), codebook_size=3)
    # level 0: codes 0, 1, 2 hold 4, 0, 0 interactions -> smoothed 5, 1, 1; level 1: 1, 3, 0 -> 2, 4, 1
    for level, smoothed in enumerate(([5, 1, 1], [2, 4, 1])):
        logs = [math.log(s / sum(smoothed)) for s in smoothed]
        assert prior[level] == pytest.approx([v - sum(logs) / 3 for v in logs])
    assert prior.sum(axis=1) == pytest.approx([0.0, 0.0])  # centred: the codes keep their total weight


def test_only_training_interactions_count() -> None:
    # each user's last two items are the validation and test targets
    dataset = make_dataset({"u1": ["a", "b", "c", "d"], "u2": ["a", "c", "d", "b"]})
    counts = dict(zip(dataset.item_ids.tolist(), training_counts(dataset).tolist(), strict=True))
    assert counts == {"a": 2, "b": 1, "c": 1, "d": 0}


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_the_bias_reaches_the_logits_through_peft(tied: bool) -> None:
    from peft import LoraConfig, get_peft_model

    from alignrec.backbone import tiny_random_llama
    from alignrec.llm.vocab import add_code_tokens

    prompt = torch.tensor([[5, 7, 9]])
    model = tiny_random_llama(0, tied=tied)
    vocab = add_code_tokens(model, [f"<a_{i}>" for i in range(4)] + [f"<b_{i}>" for i in range(4)], 2, 4, "random")
    with torch.no_grad():
        before = model(prompt).logits[0, -1]
    prior = np.arange(8, dtype=np.float64).reshape(2, 4) - 3.5
    rows = vocab.token_ids.ravel().tolist()
    wrapped = get_peft_model(model, LoraConfig(
        r=4, target_modules=["q_proj"], trainable_token_indices=rows if tied else {"embed_tokens": rows, "lm_head": rows}))
    attach_prior(wrapped, vocab, prior, strength=0.5)
    with torch.no_grad():
        after = wrapped(prompt).logits[0, -1]
    shift = after - before
    assert shift[rows] == pytest.approx(torch.as_tensor(0.5 * prior.ravel(), dtype=torch.float32), abs=1e-5)
    assert shift[: vocab.base_vocab].abs().max() < 1e-5
    with pytest.raises(RuntimeError, match="already attached"):
        attach_prior(wrapped, vocab, prior, strength=0.5)


def test_a_trained_run_decodes_with_the_prior_it_trained_with(cyclic, tmp_path: Path) -> None:
    from alignrec.llm.build import build_llm
    from alignrec.train.llm import train_llm

    artifact = tiny_artifact(cyclic)
    config = tiny_llm_config(max_steps=1, eval_steps=0, save_steps=100, code_prior=1.0)
    train_llm(cyclic, artifact, config, tmp_path / "run", seed=0)
    loaded = build_llm(config, artifact, cyclic, 0, tmp_path / "run" / "model").model
    without = build_llm(config.model_copy(update={"code_prior": 0.0}), artifact, cyclic, 0,
                        tmp_path / "run" / "model").model
    vocab = CodeVocabulary(loaded.get_input_embeddings().weight.shape[0] - 16, 2, 8, ())
    prompt = torch.tensor([[5, 7, 9]])
    with torch.no_grad():
        shift = loaded(prompt).logits[0, -1] - without(prompt).logits[0, -1]
    expected = code_log_prior(artifact.codes, training_counts(cyclic), 8).ravel()
    assert shift[vocab.token_ids.ravel()] == pytest.approx(torch.as_tensor(expected, dtype=torch.float32), abs=1e-4)
    assert shift[: vocab.base_vocab].abs().max() < 1e-4
