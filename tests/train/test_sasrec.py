"""SASRec learns what it should, and a resumed run equals an uninterrupted one."""

import numpy as np
import pytest
import torch

from alignrec.config import EvalConfig, SASRecConfig
from alignrec.data.split import eval_users
from alignrec.errors import AlignrecError
from alignrec.eval.evaluator import evaluate_rankings
from alignrec.eval.ranking import rank_users
from alignrec.models.mostpop import MostPop
from alignrec.models.sasrec import SASRec
from alignrec.train import sasrec as trainer
from tests.conftest import cyclic_dataset

SMALL = dict(hidden=16, layers=1, heads=1, ffn_mult=2, dropout=0.0, max_len=16, batch_size=32, lr=5e-3,
             eval_every=1, patience=100)


def unchecked(**changes: object) -> SASRecConfig:
    """A one-epoch SMALL config with ``changes`` that skipped validation (as a copy or an assignment
    does), which the trainer checks before it starts."""
    return SASRecConfig(epochs=1, **SMALL).model_copy(update=changes)


@pytest.mark.parametrize("tied", [True, False])
def test_learns_a_pattern_popularity_cannot(tmp_path, tied: bool) -> None:
    ds = cyclic_dataset()
    model, state = trainer.train_sasrec(ds, SASRecConfig(epochs=25, tied=tied, **SMALL), tmp_path, progress=False)
    test = trainer.evaluate_sasrec(model, ds, "test", EvalConfig(ks=[10]), progress=False)
    losses = [row["loss"] for row in state.log]
    assert losses[-1] < 0.5 * losses[0]
    ranked = rank_users(MostPop.fit(ds, "test"), ds, eval_users(ds), "test", EvalConfig(ks=[10, 50]), progress=False)
    popular = evaluate_rankings(ds, ranked, "test", "mostpop")
    assert popular.metrics["recall@10"] < 0.35
    assert test.metrics["recall@10"] > 0.9
    assert (tmp_path / "item_embeddings.npz").is_file() and (tmp_path / "train_log.csv").is_file()


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, monkeypatch, ema_decay: float) -> None:
    ds = cyclic_dataset(num_users=60)
    config = SASRecConfig(epochs=4, ema_decay=ema_decay, **{**SMALL, "dropout": 0.2})
    straight, _ = trainer.train_sasrec(ds, config, tmp_path / "a", seed=3, progress=False)

    real_loss = trainer.sequence_loss
    calls = {"n": 0}

    def dies_in_epoch_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 2 + 1:  # 2 batches an epoch: die inside epoch 3
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "sequence_loss", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_sasrec(ds, config, tmp_path / "b", seed=3, progress=False)
    assert torch.load(tmp_path / "b" / trainer.CHECKPOINT, weights_only=False)["state"]["epoch"] == 2
    monkeypatch.setattr(trainer, "sequence_loss", real_loss)
    resumed, state = trainer.train_sasrec(ds, config, tmp_path / "b", seed=3, progress=False)
    assert state.epoch == 4
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_a_run_stopped_by_its_budget_extends_under_a_larger_one_to_the_uninterrupted_weights(tmp_path) -> None:
    ds = cyclic_dataset(num_users=60)
    config = SASRecConfig(epochs=3, **{**SMALL, "dropout": 0.2})
    straight, _ = trainer.train_sasrec(ds, config, tmp_path / "a", seed=3, progress=False)
    tiny_budget = config.model_copy(update={"max_minutes": 1e-9})
    _, stopped = trainer.train_sasrec(ds, tiny_budget, tmp_path / "b", seed=3, progress=False)
    assert stopped.epoch == 1
    _, again = trainer.train_sasrec(ds, tiny_budget, tmp_path / "b", seed=3, progress=False)
    assert again.epoch == 1  # the same budget: nothing more to do
    extended, state = trainer.train_sasrec(ds, config, tmp_path / "b", seed=3, progress=False)
    assert state.epoch == 3
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, extended.state_dict()[name]), name


def test_bce_loss_trains(tmp_path) -> None:
    ds = cyclic_dataset(num_users=60)
    _, state = trainer.train_sasrec(ds, SASRecConfig(epochs=3, loss="bce", **SMALL), tmp_path, progress=False)
    assert state.log[-1]["loss"] < state.log[0]["loss"]


def test_bucketed_batches_cover_every_user_once() -> None:
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    batches = trainer.bucketed_batches(lengths, 64, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert max(len(b) for b in batches) == 64


def test_all_windows_cover_every_training_target_once() -> None:
    from alignrec.data.split import train_sequence
    from tests.conftest import make_dataset

    # 14 items -> 12 in training after leave-one-out -> 11 targets: windows of 5 + 5 + 1.
    ds = make_dataset({"long": [f"a{n}" for n in range(14)], "short": ["b0", "b1", "b2", "b3"]})
    last_in, last_out, _ = trainer.training_windows(ds, max_len=5)
    all_in, all_out, all_earlier = trainer.training_windows(ds, max_len=5, all_windows=True)
    assert len(last_out) == 2 and len(all_out) == 4
    assert torch.equal(last_out[0], all_out[0]) and torch.equal(last_out[1], all_out[3])
    for user, rows in ((0, [0, 1, 2]), (1, [3])):
        sequence = train_sequence(ds, user) + 1  # windows hold ids shifted by one
        targets = sorted(t for r in rows for t in all_out[r][all_out[r] > 0].tolist())
        assert targets == sorted(sequence[1:].tolist())  # every target once
        for r in rows:  # each target is the item after its input
            real = all_out[r] > 0
            assert torch.equal(all_in[r][real][1:], all_out[r][real][:-1])
            # what the user had before the window: everything before its first input
            first = int(all_in[r][real][0]) - 1
            assert all_earlier[r].tolist() == (sequence - 1)[: (sequence - 1).tolist().index(first)].tolist()
    assert [len(e) for e in all_earlier] == [6, 1, 0, 0]  # 12 training items: windows start at 6, 1, 0


def test_sasrec_on_an_explicit_cpu_device(tmp_path) -> None:
    ds = cyclic_dataset(num_users=20)
    model, _ = trainer.train_sasrec(ds, SASRecConfig(epochs=1, **SMALL), tmp_path, progress=False,
                                       device=torch.device("cpu"))
    assert model.item_embedding.weight.device.type == "cpu"


def test_final_fit_learns_the_validation_item_and_runs_fixed_epochs(tmp_path) -> None:
    from tests.conftest import make_dataset

    ds = make_dataset({"u": ["a", "b", "c", "d", "e"], "v": ["f", "g", "h", "i"]})
    strict_out = trainer.training_windows(ds, max_len=8).outputs
    final_out = trainer.training_windows(ds, max_len=8, with_valid=True).outputs
    for user in range(ds.num_users):
        sequence = ds.sequence(user) + 1  # windows hold ids shifted by one
        assert strict_out[user][strict_out[user] > 0].tolist() == sequence[1:-2].tolist()
        assert final_out[user][final_out[user] > 0].tolist() == sequence[1:-1].tolist()  # + validation, no test

    cyc = cyclic_dataset(num_users=30)
    _, state = trainer.train_sasrec(cyc, SASRecConfig(epochs=3, train_on="train+valid", **{**SMALL, "patience": 1}),
                                       tmp_path, progress=False)
    assert state.epoch == 3 and state.best_epoch == 3  # no early stopping: the validation item is training data
    assert all("valid_ndcg@10" not in row for row in state.log)
    with pytest.raises(AlignrecError, match="train_on"):
        trainer.train_sasrec(cyc, unchecked(train_on="all"), tmp_path / "x", progress=False)


def test_linear_schedule_decays_to_zero_over_the_epochs(tmp_path) -> None:
    config = SASRecConfig(epochs=4, lr_schedule="linear", **SMALL)
    assert trainer.learning_rate(config, 0, 100) == config.lr
    assert trainer.learning_rate(config, 50, 100) == pytest.approx(config.lr / 2)
    assert trainer.learning_rate(config, 100, 100) == 0.0
    assert trainer.learning_rate(SASRecConfig(**SMALL), 99, 100) == SMALL["lr"]  # constant by default
    ds = cyclic_dataset(num_users=60)
    trainer.train_sasrec(ds, config, tmp_path, progress=False)
    saved = torch.load(tmp_path / trainer.CHECKPOINT, weights_only=False)
    last_lr = saved["optimizer"]["param_groups"][0]["lr"]
    assert 0.0 < last_lr <= config.lr / 4  # the last of 4 epochs' steps ran at the bottom of the slope
    with pytest.raises(AlignrecError, match="lr_schedule"):
        trainer.train_sasrec(ds, unchecked(lr_schedule="cosine"), tmp_path / "x", progress=False)


def test_ema_weights_are_the_ones_validated_and_kept(tmp_path) -> None:
    ds = cyclic_dataset(num_users=60)
    config = SASRecConfig(epochs=3, ema_decay=0.9, train_on="train+valid", **SMALL)
    model, _ = trainer.train_sasrec(ds, config, tmp_path, progress=False)
    saved = torch.load(tmp_path / trainer.CHECKPOINT, weights_only=False)
    averaged = {k.removeprefix("module."): v for k, v in saved["ema"].items() if k.startswith("module.")}
    best = torch.load(tmp_path / trainer.BEST, weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, averaged[name]) and torch.equal(tensor, best[name]), name
    raw = saved["model"]["item_embedding.weight"]
    assert not torch.allclose(raw, averaged["item_embedding.weight"])  # the average lags the last step


@pytest.mark.parametrize(("setting", "value"), [("ema_decay", 1.0), ("ema_decay", -0.1), ("init_std", 0.0),
                                               ("attention_dropout", 1.0), ("attention_dropout", -0.1)])
def test_bad_ema_decay_init_std_or_attention_dropout_is_a_clear_error(tmp_path, setting: str, value: float) -> None:
    with pytest.raises(AlignrecError, match=f"sasrec.{setting}="):
        trainer.train_sasrec(cyclic_dataset(num_users=20), unchecked(**{setting: value}), tmp_path, progress=False)


def test_seen_items_lists_each_positions_inputs_so_far() -> None:
    # Ids shifted by one (PAD = 0); 9 marks "nothing" for a catalogue of 9 items.
    assert trainer.seen_items(torch.tensor([[0, 3, 1, 2]]), 9).tolist() == [[
        [9, 9, 9, 9],
        [9, 2, 9, 9],
        [9, 2, 0, 9],
        [9, 2, 0, 1],
    ]]


def test_exclude_seen_loss_is_the_softmax_over_items_the_user_has_not_had() -> None:
    torch.manual_seed(0)
    model = SASRec(10, SASRecConfig(**{**SMALL, "max_len": 6}, similarity="cosine", temperature=0.1))
    model.eval()
    inputs = torch.tensor([[0, 3, 1, 2, 5, 4], [0, 0, 0, 7, 8, 7]])
    outputs = torch.tensor([[0, 1, 2, 5, 4, 1], [0, 0, 0, 8, 7, 9]])  # both rows repeat an item
    # 0-based: row 0's user had items 9, 5 and 4 before the window; 4 comes back as a target (t = 3).
    before = [np.array([9, 5, 4]), np.array([], dtype=np.int64)]
    states, items = model(inputs), model.item_vectors()
    expected = []
    for row, t in (outputs != 0).nonzero().tolist():
        logits = model.logits(states[row, t], items).clone()
        target = int(outputs[row, t]) - 1
        seen = ({int(i) - 1 for i in inputs[row, : t + 1] if i} | set(before[row].tolist())) - {target}
        logits[sorted(seen)] = float("-inf")
        expected.append(torch.nn.functional.cross_entropy(logits[None], torch.tensor([target])))
    reference = torch.stack(expected).mean()
    reference.backward()
    expected_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    masked = trainer.sequence_loss(model, inputs, outputs, "ce", trainer.earlier_mask(before, 10))
    masked.backward()
    assert torch.allclose(masked, reference)
    for grad, expected_grad in zip((p.grad for p in model.parameters()), expected_grads, strict=True):
        assert torch.allclose(grad, expected_grad, atol=1e-6)  # the mask outside autograd loses nothing
    assert masked < trainer.sequence_loss(model, inputs, outputs, "ce")  # fewer candidates, lower loss


def test_exclude_seen_trains_and_is_refused_with_bce(tmp_path) -> None:
    ds = cyclic_dataset(num_users=60)
    model, state = trainer.train_sasrec(ds, SASRecConfig(epochs=15, exclude_seen=True, **SMALL), tmp_path / "ce",
                                        progress=False)
    test = trainer.evaluate_sasrec(model, ds, "test", EvalConfig(ks=[10]), progress=False)
    assert state.log[-1]["loss"] < 0.5 * state.log[0]["loss"] and test.metrics["recall@10"] > 0.5
    with pytest.raises(AlignrecError, match="sasrec.exclude_seen"):
        trainer.train_sasrec(ds, unchecked(loss="bce", exclude_seen=True), tmp_path / "bce", progress=False)
