import numpy as np
import pytest
import torch

from alignrec.config import SASRecConfig
from alignrec.models.sasrec import PAD, SASRec, left_pad


def model(**kwargs) -> SASRec:
    torch.manual_seed(0)
    net = SASRec(20, SASRecConfig(hidden=16, layers=2, heads=2, dropout=0.0, max_len=8, **kwargs))
    for block in net.blocks:  # the bias starts at zero; make it matter
        if block.relative_bias is not None:
            block.relative_bias.data.normal_()
    return net.eval()


def test_left_pad_shifts_ids_and_keeps_the_latest() -> None:
    batch = left_pad([np.array([0, 1, 2, 3, 4]), np.array([7])], max_len=3)
    assert batch.tolist() == [[3, 4, 5], [PAD, PAD, 8]]
    assert left_pad([np.array([1]), np.array([2, 3])], max_len=8, trim=True).tolist() == [[PAD, 2], [3, 4]]


@pytest.mark.parametrize("trim", [False, True])
def test_left_pad_keeps_every_item_of_a_sequence_that_fits(trim: bool) -> None:
    """Each row holds its sequence's last ``width`` items, all of them when it is shorter.

    Every length from 0 to twice the width, in one batch: a sequence longer than half the
    width once lost its oldest items (a negative slice start)."""
    width = 8
    sequences = [np.arange(100, 100 + n) for n in range(2 * width + 1)]
    batch = left_pad(sequences, max_len=width, trim=trim)
    assert batch.shape == (len(sequences), width)
    for sequence, row in zip(sequences, batch.tolist(), strict=True):
        kept = sequence[-width:]
        assert row == [PAD] * (width - len(kept)) + (kept + 1).tolist()


@pytest.mark.parametrize("relative_bias", [False, True])
def test_outputs_are_causal(relative_bias: bool) -> None:
    net = model(relative_bias=relative_bias)
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 3, 9, 11]])
    with torch.no_grad():
        out_a, out_b = net(a), net(b)
    assert torch.allclose(out_a[:, :3], out_b[:, :3], atol=1e-6)
    assert not torch.allclose(out_a[:, 3:], out_b[:, 3:])


@pytest.mark.parametrize("relative_bias", [False, True])
def test_padding_width_does_not_change_scores(relative_bias: bool) -> None:
    net = model(relative_bias=relative_bias)
    history = [np.array([3, 4, 5])]
    with torch.no_grad():
        full = net.score_last(left_pad(history, 8))
        trimmed = net.score_last(left_pad(history, 8, trim=True))
    assert trimmed.shape == full.shape == (1, 20)
    assert torch.allclose(full, trimmed, atol=1e-5)


def test_padding_positions_output_zero() -> None:
    net = model()
    with torch.no_grad():
        out = net(torch.tensor([[PAD, PAD, 3, 4]]))
    assert torch.all(out[0, :2] == 0) and torch.all(out[0, 2:].abs().sum(-1) > 0)


def test_cosine_similarity_bounds_scores_by_the_temperature() -> None:
    torch.manual_seed(0)
    net = SASRec(20, SASRecConfig(hidden=16, layers=1, heads=1, dropout=0.0, max_len=8,
                                  similarity="cosine", temperature=0.1)).eval()
    assert torch.allclose(net.item_vectors().norm(dim=-1), torch.ones(20), atol=1e-5)
    with torch.no_grad():
        scores = net.score_last(left_pad([np.array([1, 2, 3])], 8))
    assert scores.abs().max() <= 1 / 0.1 + 1e-4
    assert scores.abs().max() > 1.0  # the temperature really scales


def test_logits_are_cosine_over_the_temperature() -> None:
    torch.manual_seed(0)
    net = SASRec(20, SASRecConfig(hidden=16, layers=1, heads=1, dropout=0.0, max_len=8,
                                  similarity="cosine", temperature=0.1)).eval()
    states = torch.randn(3, 16)
    items = torch.randn(20, 16)
    expected = torch.nn.functional.cosine_similarity(states[:, None], items[None], dim=-1) / 0.1
    unit = torch.nn.functional.normalize
    assert torch.allclose(net.logits(unit(states, dim=-1), unit(items, dim=-1)), expected, atol=1e-5)


def test_relative_bias_steers_attention() -> None:
    """A large bias on distance 0 makes every position attend to itself only, so the last
    output no longer depends on the items before it."""
    net = model(relative_bias=True)
    a, b = torch.tensor([[1, 2, 3]]), torch.tensor([[7, 9, 3]])
    with torch.no_grad():
        assert not torch.allclose(net(a)[:, -1], net(b)[:, -1], atol=1e-4)
        for block in net.blocks:
            block.relative_bias.data.zero_()
            block.relative_bias.data[:, 0] = 1e4
        assert torch.allclose(net(a)[:, -1], net(b)[:, -1], atol=1e-5)


def test_relative_bias_is_capped_at_max_len() -> None:
    net = model(relative_bias=True)
    assert all(block.relative_bias.shape == (2, 8) for block in net.blocks)
    assert all(block.relative_bias is None for block in model().blocks)


def test_init_std_starts_every_weight_small() -> None:
    torch.manual_seed(0)
    net = SASRec(500, SASRecConfig(hidden=64, layers=2, heads=2, max_len=50, init_std=0.02))
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and all(abs(m.weight.std().item() - 0.02) < 0.004 for m in linear)
    assert all(torch.all(m.bias == 0) for m in linear)
    assert abs(net.item_embedding.weight[1:].std().item() - 0.02) < 0.002
    assert torch.all(net.item_embedding.weight[PAD] == 0)
    default = SASRec(500, SASRecConfig(hidden=64, layers=2, heads=2, max_len=50))
    assert abs(default.item_embedding.weight[1:].std().item() - 64**-0.5) < 0.01


def test_attention_dropout_acts_in_training_only() -> None:
    padded = torch.tensor([[PAD, 1, 2, 3, 4, 5], [PAD, PAD, PAD, 6, 7, 8]])
    net = model(attention_dropout=0.5)
    assert torch.equal(net(padded), net(padded))  # eval: deterministic
    net.train()
    assert not torch.allclose(net(padded), net(padded))  # residual dropout is 0: only attention drops
    assert torch.allclose(model()(padded), net.eval()(padded))  # and at eval it is the model without it


def test_untied_model_scores_with_its_output_embeddings() -> None:
    """Tied, an item's input row is its scoring row; untied, only the output row scores it."""
    history = left_pad([np.array([3, 4, 5])], 8)
    tied, untied = model(), model(tied=False)
    assert tied.output_embedding is None
    assert torch.equal(tied.item_vectors(), tied.item_embedding.weight[1:])
    assert torch.equal(untied.item_vectors(), untied.output_embedding.weight)
    with torch.no_grad():
        before = untied.score_last(history)
        untied.item_embedding.weight[10] += 1.0  # item 9 is not in the history: its input row is unused
        assert torch.equal(untied.score_last(history), before)
        untied.output_embedding.weight[9] += 1.0
        after = untied.score_last(history)
    assert after[0, 9] != before[0, 9]
    assert torch.equal(torch.cat([after[:, :9], after[:, 10:]], 1), torch.cat([before[:, :9], before[:, 10:]], 1))


def test_init_std_starts_the_output_embeddings_small_too() -> None:
    torch.manual_seed(0)
    net = SASRec(500, SASRecConfig(hidden=64, layers=2, heads=2, max_len=50, init_std=0.02, tied=False))
    assert net.output_embedding.weight.shape == (500, 64)
    assert abs(net.output_embedding.weight.std().item() - 0.02) < 0.002
