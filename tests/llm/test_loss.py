"""The training loss (``llm/loss.py``) against the model's own forward, and against the beam search's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.decode import search_and_score
from alignrec.io import read_json, write_json
from alignrec.llm.build import ADAPTER, TASK_NAMES, VOCAB, LLMBuild, build_llm
from alignrec.llm.encoding import IGNORE, collate, pack
from alignrec.llm.loss import training_loss
from alignrec.llm.tasks.example import Example, item, text
from alignrec.train.llm import train_llm
from tests.llm.conftest import tiny_llm_config


def trained_like(dataset: SequenceDataset, artifact, **overrides: object) -> LLMBuild:
    """A training build whose LoRA weights and code rows are all non-zero, as after some steps
    (at initialisation LoRA's B is zero and the code rows equal the base rows: a wrong gather could hide)."""
    built = build_llm(tiny_llm_config(**overrides), artifact, dataset, seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in built.model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))
    built.model.eval()
    return built


def examples() -> list[Example]:
    """Two tasks packed into one row: item targets at two levels' positions, and a text target."""
    return [
        Example("sequential", [text("A user's items, oldest first:"), item(3), item(5, target=True), item(7, target=True)]),
        Example("item_to_text", [item(2), text(" is called"), text(" Heat", target=True)]),
    ]


def expected_loss(built: LLMBuild, encoded: list, softmax: str) -> float:
    """Each example alone through the model's own forward (peft's merged rows, its own attention):
    a code target normalised over its level's codes (``level``) or the vocabulary, text over the vocabulary."""
    vocab, total = built.vocab, 0.0
    for example in encoded:
        ids = torch.from_numpy(example.input_ids)[None]
        with torch.no_grad():
            log_probs = built.model(input_ids=ids).logits[0, :-1].double()
        for position, label in enumerate(example.labels[1:].tolist()):
            if label == IGNORE:
                continue
            row = log_probs[position]
            if softmax == "level" and label >= vocab.base_vocab:
                level_ids = torch.as_tensor(vocab.token_ids[(label - vocab.base_vocab) // vocab.codebook_size])
                row = row[level_ids].log_softmax(0)
                label = int((level_ids == label).nonzero())
            else:
                row = row.log_softmax(0)
            total -= float(row[label])
    return total


@pytest.mark.parametrize("softmax", ["level", "vocabulary"])
@pytest.mark.parametrize("segments", [True, False], ids=["segments", "masked"])
def test_the_loss_of_a_packed_batch_is_each_example_s_own_cross_entropy(
    cyclic: SequenceDataset, tiny_tokens, softmax: str, segments: bool,
) -> None:
    artifact, _ = tiny_tokens
    built = trained_like(cyclic, artifact, code_softmax=softmax, segment_attention=str(segments).lower())
    encoded = built.encoder.encode(examples())
    assert sum(int((e.labels >= built.vocab.base_vocab).sum()) for e in encoded) == 4  # two items x two levels
    batch = collate(pack(encoded, 128), built.pad_id)
    assert batch["input_ids"].shape[0] == 1  # both examples share the row
    with torch.no_grad():
        total, per_task = training_loss(built.model, batch, built.vocab, softmax, segments)
    assert float(total) == pytest.approx(expected_loss(built, encoded, softmax), rel=1e-5)
    sequential, item_to_text = TASK_NAMES.index("sequential"), TASK_NAMES.index("item_to_text")
    assert per_task[sequential][1] == 4 and per_task[item_to_text][1] == int((encoded[1].labels != IGNORE).sum())
    assert sum(value for value, _ in per_task.values()) == pytest.approx(float(total), rel=1e-6)


def test_the_level_loss_gradients_equal_those_of_the_model_s_own_forward(cyclic: SequenceDataset, tiny_tokens) -> None:
    """The rows the loss gathers itself (inputs and head) train the same parameters as peft's merged matrices.
    In float64: in float32 the two attention paths' roundings differ by ~1e-4 of a small gradient."""
    artifact, _ = tiny_tokens
    built = trained_like(cyclic, artifact)
    built.model.double()
    encoded = built.encoder.encode(examples()[:1])
    batch = collate(pack(encoded, 128), built.pad_id)
    trainable = {name: p for name, p in built.model.named_parameters() if p.requires_grad}

    total, _ = training_loss(built.model, batch, built.vocab, "level", segments=True)
    ours = torch.autograd.grad(total, list(trainable.values()), allow_unused=True)
    logits = built.model(input_ids=batch["input_ids"]).logits[0, :-1]
    labels = batch["labels"][0, 1:]
    reference = logits.new_zeros(())
    for position in (labels != IGNORE).nonzero().squeeze(1).tolist():
        offset = int(labels[position]) - built.vocab.base_vocab
        level_ids = torch.as_tensor(built.vocab.token_ids[offset // built.vocab.codebook_size])
        reference = reference - logits[position, level_ids].log_softmax(0)[offset % built.vocab.codebook_size]
    theirs = torch.autograd.grad(reference, list(trainable.values()), allow_unused=True)
    assert float(total.detach()) == pytest.approx(float(reference.detach()), rel=1e-10)
    for name, a, b in zip(trainable, ours, theirs, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("softmax", ["level", "vocabulary"])
def test_an_item_s_training_loss_is_minus_its_decoding_score(cyclic: SequenceDataset, tiny_tokens, softmax: str) -> None:
    """What training lowers is what the beam search ranks by: the same prompt, the same normalisation."""
    artifact, _ = tiny_tokens
    built = trained_like(cyclic, artifact, code_softmax=softmax)
    recommender = built.recommender
    assert recommender.softmax == softmax
    history, targets = cyclic.sequence(0)[:4], np.array([[1, 6, 11]])
    prompt = recommender.prompts([history])[0]
    losses = []
    for target in targets[0].tolist():
        codes = built.encoder.item_token_ids[target].tolist()
        ids = torch.tensor([prompt + codes])
        labels = torch.tensor([[IGNORE] * len(prompt) + codes])
        batch = {"input_ids": ids, "labels": labels, "position_ids": torch.arange(ids.shape[1])[None],
                 "tasks": torch.where(labels == IGNORE, -1, 0)}
        with torch.no_grad():
            losses.append(float(training_loss(built.model, batch, built.vocab, softmax)[0]))
    _, _, scores = search_and_score(built.model, [prompt], recommender.trie, beams=4, k=1, pad_token_id=built.pad_id,
                                    candidates=targets, softmax=softmax)
    np.testing.assert_allclose(-scores[0], losses, rtol=1e-5)
    # and the recommender's own search, which reads a level model's code rows alone (its code head)
    assert (recommender.code_head is not None) == (softmax == "level")
    _, _, searched = recommender.search([history], 1, exclude_history=False, candidates=targets)
    np.testing.assert_allclose(-searched[0], losses, rtol=1e-5)


def test_a_run_saved_before_code_softmax_decodes_over_the_vocabulary(
    cyclic: SequenceDataset, tiny_tokens, tmp_path: Path,
) -> None:
    artifact, _ = tiny_tokens
    config = tiny_llm_config(max_steps=1, eval_steps=0, save_steps=100)
    train_llm(cyclic, artifact, config, tmp_path / "run", seed=0)
    vocab_file = tmp_path / "run" / ADAPTER / VOCAB
    assert read_json(vocab_file)["code_softmax"] == "level"
    assert build_llm(config, artifact, cyclic, 0, tmp_path / "run" / ADAPTER).recommender.softmax == "level"
    saved = read_json(vocab_file)
    del saved["code_softmax"]
    write_json(vocab_file, saved)
    assert build_llm(config, artifact, cyclic, 0, tmp_path / "run" / ADAPTER).recommender.softmax == "vocabulary"
