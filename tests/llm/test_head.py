"""``llm/head.py``'s shortcuts: a head asked for no positions builds nothing, and a frozen weight's
autocast copy is cast once while the weight is unchanged."""

from __future__ import annotations

import pytest
import torch

from alignrec.data.dataset import SequenceDataset
from alignrec.llm.head import autocast_copy, input_embeddings, trained_rows
from tests.llm.test_loss import trained_like


def test_a_head_asked_for_no_positions_builds_no_merged_matrix_but_keeps_its_rows_in_the_graph(
    cyclic: SequenceDataset, tiny_tokens, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    artifact, _ = tiny_tokens
    built = trained_like(cyclic, artifact)
    ids = torch.tensor([[1, 2, 3, 4]])
    full = built.model(input_ids=ids).logits  # with positions: the head's own forward
    assert full.shape == (1, 4, built.vocab.base_vocab + built.vocab.size)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("merged the whole vocabulary's rows for no positions")

    monkeypatch.setattr(TrainableTokensLayer, "get_merged_weights", refuse)
    nothing = torch.empty(0, dtype=torch.long)
    embedded = input_embeddings(built.model, ids)  # as the loss looks them up: no merged embedding either
    out = built.model(inputs_embeds=embedded, logits_to_keep=nothing, output_hidden_states=True)
    assert out.logits.shape == (1, 0, full.shape[-1])
    built.model.zero_grad(set_to_none=True)
    out.logits.sum().backward()  # DDP finds the parameters a forward used from its outputs' graph
    _, _, rows = trained_rows(built.model.get_output_embeddings())
    assert rows is not None and rows.grad is not None and not rows.grad.any()


def test_a_frozen_weight_is_cast_once_under_autocast_and_again_after_it_changes() -> None:
    weight = torch.randn(6, 4)
    assert autocast_copy(weight) is weight  # outside autocast: the weight itself
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = autocast_copy(weight)
        assert first.dtype == torch.bfloat16 and torch.equal(first, weight.to(torch.bfloat16))
        assert autocast_copy(weight) is first
        with torch.no_grad():
            weight.mul_(2)
        again = autocast_copy(weight)
        assert again is not first and torch.equal(again, weight.to(torch.bfloat16))
        trainable = torch.randn(3, 4, requires_grad=True)
        assert autocast_copy(trainable) is trainable  # autocast caches those itself, with their gradient
