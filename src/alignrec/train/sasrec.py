"""Train SASRec with early stopping on validation NDCG@10, then evaluate on test.

Loss: full softmax cross-entropy over all items at every position (``ce``,
default) or the original paper's binary loss with one sampled negative
(``bce``). Full softmax is affordable for catalogues of tens of thousands of
items and is known to lift SASRec far above its BCE numbers (Klenitskiy &
Vasilev, RecSys 2023); BENCHMARKS.md has both measured on the same data.

Resume: after every epoch the trainer writes ``checkpoint.pt`` atomically
(model, optimizer, counters, log). Each epoch seeds its own shuffle and
dropout from ``(seed, epoch)``, so a resumed run follows the same path as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from alignrec.config import EvalConfig, SASRecConfig, check_config, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split, eval_users, train_sequence
from alignrec.eval.evaluator import EvalResult, evaluate_rankings
from alignrec.eval.ranking import rank_users
from alignrec.io import atomic_open, atomic_path
from alignrec.models.sasrec import (
    BEST,
    CHECKPOINT,
    EMBEDDINGS,
    PAD,
    SASRec,
    SASRecRecommender,
    left_pad,
    save_item_embeddings,
)
from alignrec.provenance import code_versions
from alignrec.seed import seed_everything
from alignrec.train.tracking import event_writer

if TYPE_CHECKING:
    from alignrec.catalog import TrainContext


class Windows(NamedTuple):
    """Training windows: PAD-left-padded inputs and next-item targets ([windows, max_len], ids
    shifted by one), and per window the items its user had before it (0-based ids)."""

    inputs: torch.Tensor
    outputs: torch.Tensor
    earlier: list[np.ndarray]


def training_windows(
    dataset: SequenceDataset, max_len: int, all_windows: bool = False, with_valid: bool = False
) -> Windows:
    """One window per user holds its most recent ``max_len`` targets. With
    ``all_windows`` a longer history is cut, from the end, into further windows
    whose targets do not overlap, so no training interaction is left out.
    """
    inputs, outputs, earlier = [], [], []
    for user in range(dataset.num_users):
        sequence = train_sequence(dataset, user, with_valid)
        end = len(sequence)
        while end >= 2:
            start = max(0, end - max_len - 1)
            inputs.append(sequence[start : end - 1])
            outputs.append(sequence[start + 1 : end])
            earlier.append(sequence[:start])
            if not all_windows:
                break
            end -= max_len
    return Windows(left_pad(inputs, max_len), left_pad(outputs, max_len), earlier)


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length, so trimmed batches carry little padding.

    Users are shuffled, cut into pools of 32 batches, sorted by length inside a
    pool, batched, and the batches shuffled again.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * 32
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        part = order[start : start + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def trim_padding(inputs: torch.Tensor, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop leading columns that are padding in every row."""
    real = (inputs != PAD).any(0)
    first = int(real.to(torch.uint8).argmax()) if bool(real.any()) else inputs.shape[1] - 1
    return inputs[:, first:], outputs[:, first:]


def seen_items(inputs: torch.Tensor, num_items: int) -> torch.Tensor:
    """[batch, L, L] item index (0-based) of every input at or before each position;
    ``num_items`` (one past the last item) where there is none."""
    length = inputs.shape[1]
    before = torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril()
    candidates = inputs.unsqueeze(1).expand(-1, length, -1)  # [b, t, s] = inputs[b, s]
    keep = before & (candidates != PAD)
    return torch.where(keep, candidates - 1, torch.full_like(candidates, num_items))


def earlier_mask(earlier: list[np.ndarray], num_items: int) -> torch.Tensor:
    """[batch, num_items + 1] bool: the items each window's user had before the window (the
    last column is a spare that ``sequence_loss`` writes "nothing" into)."""
    mask = torch.zeros(len(earlier), num_items + 1, dtype=torch.bool)
    rows = np.repeat(np.arange(len(earlier)), [len(items) for items in earlier])
    columns = np.concatenate([np.asarray(items, dtype=np.int64) for items in earlier]) if earlier else []
    mask[torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(columns, dtype=torch.long)] = True
    return mask


def sequence_loss(model: SASRec, inputs: torch.Tensor, outputs: torch.Tensor, loss: str,
                  earlier: torch.Tensor | None = None) -> torch.Tensor:
    """Mean next-item loss over the real positions of a batch.

    ``earlier`` (``ce`` only; ``earlier_mask``): leave every item the user had up to a position,
    before its window or in it, out of that position's softmax, except its own target (a
    repeat), as the evaluation leaves the history out of the ranking (``exclude_seen``).
    """
    states = model(inputs)
    real = outputs != PAD
    states, positives = states[real], outputs[real] - 1
    items = model.item_vectors()
    if loss == "ce":
        logits = model.logits(states, items)
        if earlier is not None:
            seen = earlier[real.nonzero()[:, 0]].scatter_(1, seen_items(inputs, model.num_items)[real], True)
            seen[torch.arange(len(positives), device=seen.device), positives] = False
            # Outside autograd: the softmax gives masked items zero probability, so their gradient
            # is zero without a masked_fill backward pass over the [positions, items] logits.
            with torch.no_grad():
                logits.masked_fill_(seen[:, :-1], float("-inf"))
        return F.cross_entropy(logits, positives)
    negatives = torch.randint(0, model.num_items, positives.shape, device=positives.device)
    pos = (states * items[positives]).sum(-1) / model.temperature
    neg = (states * items[negatives]).sum(-1) / model.temperature
    return F.binary_cross_entropy_with_logits(
        torch.cat([pos, neg]), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    )


def learning_rate(config: SASRecConfig, step: int, total_steps: int) -> float:
    """``lr`` throughout, or (``lr_schedule: linear``) decayed linearly to zero over ``epochs``.

    A function of the global step only, so a resumed run follows the same schedule.
    """
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * max(0.0, 1.0 - step / max(total_steps, 1))


def evaluate_sasrec(
    model: SASRec, dataset: SequenceDataset, split: Split, settings: EvalConfig, progress: bool = True
) -> EvalResult:
    """Every evaluable user ranked through the recommender contract, as every model is."""
    rankings = rank_users(SASRecRecommender(model), dataset, eval_users(dataset), split, settings, progress)
    return evaluate_rankings(dataset, rankings, split, "sasrec", settings)


@dataclass
class TrainState:
    epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = 0
    bad_evals: int = 0
    elapsed: float = 0.0
    done: bool = False
    log: list[dict[str, float]] = dataclasses.field(default_factory=list)


def _should_stop(state: TrainState, config: SASRecConfig) -> bool:
    over_budget = config.max_minutes > 0 and state.elapsed > 60 * config.max_minutes
    return state.bad_evals >= config.patience or over_budget or state.epoch >= config.epochs


def _save_checkpoint(path: Path, model: SASRec, ema: AveragedModel | None,
                     optimizer: torch.optim.Optimizer, state: TrainState,
                     config: SASRecConfig, seed: int, data: str) -> None:
    with atomic_path(path) as tmp:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "state": dataclasses.asdict(state),
                "config": to_dict(config),
                "seed": seed,
                "data": data,
                "code": code_versions(),
            },
            tmp,
        )


def _write_log(path: Path, log: list[dict[str, float]]) -> None:
    if not log:
        return
    columns = sorted({key for row in log for key in row}, key=lambda k: (k != "epoch", k))
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(log)


def train_sasrec(
    dataset: SequenceDataset,
    config: SASRecConfig,
    out: str | Path,
    seed: int = 42,
    exclude_history: bool = True,
    progress: bool = True,
    device: torch.device | str = "cpu",
    tensorboard: Path | None = None,
) -> tuple[SASRec, TrainState]:
    """Train (or resume from ``out/checkpoint.pt``) in ``out``; return the evaluated model and the state.
    ``tensorboard``: a folder for TensorBoard event files of every epoch's loss and validation metrics.

    Whether a checkpoint belongs to these settings is the run directory's rule
    (``alignrec.rundir.claim``), checked before this is called. On a GPU the run is
    as reproducible as its kernels allow, not bit-equal to a CPU run.
    """
    check_config(config, "sasrec")  # a config built in code gets the checks a loaded one had
    final_fit = config.train_on == "train+valid"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    device = torch.device(device)
    model = SASRec(dataset.num_items, config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay)) if config.ema_decay else None
    scored = ema.module if ema is not None else model  # the weights validated, tested and saved
    state = TrainState()
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, weights_only=False, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        state = TrainState(**saved["state"])
        finished = state.done
        state.done = _should_stop(state, config)  # a larger budget or patience extends a finished run
        if progress and finished and not state.done:
            print(f"extending SASRec past epoch {state.epoch} under the new budget or patience ({checkpoint_path})")
        elif progress and not state.done:
            print(f"resuming SASRec from epoch {state.epoch} ({checkpoint_path})")

    inputs, outputs, earlier = training_windows(dataset, config.max_len, config.all_windows, with_valid=final_fit)
    lengths = (inputs != PAD).sum(1).numpy()
    bar = tqdm(total=config.epochs, initial=state.epoch, desc="SASRec", unit="epoch", disable=not progress)
    writer = event_writer(tensorboard)
    while not state.done and state.epoch < config.epochs:
        started = time.perf_counter()
        epoch = state.epoch + 1
        torch.manual_seed(seed * 100_003 + epoch)
        batches = bucketed_batches(lengths, config.batch_size, np.random.default_rng([seed, epoch]))
        model.train()
        total = 0.0
        total_steps = config.epochs * len(batches)  # every epoch has the same windows, so the same count
        for step, index in enumerate(batches, start=(epoch - 1) * len(batches)):
            batch_in, batch_out = (t.to(device) for t in trim_padding(inputs[index], outputs[index]))
            seen = earlier_mask([earlier[i] for i in index], model.num_items).to(device) if config.exclude_seen else None
            loss = sequence_loss(model, batch_in, batch_out, config.loss, seen)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, total_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            total += loss.item() * len(index)
        row: dict[str, float] = {"epoch": epoch, "loss": total / len(inputs)}
        if final_fit:  # the validation item is training data now: the last epoch's weights are kept
            state.best_epoch = epoch
        elif epoch % config.eval_every == 0 or epoch == config.epochs:
            valid = evaluate_sasrec(scored, dataset, "valid", EvalConfig(ks=[10], exclude_history=exclude_history), progress)
            row["valid_ndcg@10"] = valid.metrics["ndcg@10"]
            row["valid_recall@10"] = valid.metrics["recall@10"]
            if valid.metrics["ndcg@10"] > state.best_score:
                state.best_score, state.best_epoch, state.bad_evals = valid.metrics["ndcg@10"], epoch, 0
                with atomic_path(out / BEST) as tmp:
                    torch.save(scored.state_dict(), tmp)
            else:
                state.bad_evals += 1
        state.epoch = epoch
        state.elapsed += time.perf_counter() - started
        row["elapsed_s"] = state.elapsed
        state.log.append(row)
        state.done = _should_stop(state, config)
        _save_checkpoint(checkpoint_path, model, ema, optimizer, state, config, seed, dataset.fingerprint())
        _write_log(out / "train_log.csv", state.log)
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(key.replace("valid_", "valid/") if key.startswith("valid_") else f"train/{key}",
                                      value, epoch)
            writer.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", best_ndcg10=f"{state.best_score:.4f}")
    bar.close()
    if writer is not None:
        writer.close()
    state.done = True
    if final_fit:  # written once, for the loaders that read best_model.pt (serving)
        if ema is not None:  # the average is what a final fit keeps
            model.load_state_dict(ema.module.state_dict())
        with atomic_path(out / BEST) as tmp:
            torch.save(model.state_dict(), tmp)
    elif (out / BEST).is_file():
        model.load_state_dict(torch.load(out / BEST, weights_only=True, map_location=device))
    save_item_embeddings(model, dataset, out / EMBEDDINGS)
    return model.eval(), state


def plot_training(out: Path) -> None:
    """``training.png``: loss and validation NDCG@10 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log_path = out / "train_log.csv"
    if not log_path.is_file():
        return
    with open(log_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(r["epoch"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [float(r["loss"]) for r in rows])
    left.set(xlabel="epoch", ylabel="training loss", title="SASRec loss")
    valid = [(int(r["epoch"]), float(r["valid_ndcg@10"])) for r in rows if r.get("valid_ndcg@10")]
    if valid:
        right.plot(*zip(*valid, strict=True), marker="o")
    right.set(xlabel="epoch", ylabel="NDCG@10", title="validation NDCG@10")
    fig.tight_layout()
    with atomic_open(out / "training.png", "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def train_stage(context: TrainContext) -> dict[str, Any]:
    """The catalog's trainer: train (or resume) in the run's ``sasrec/``; figures for metrics.json."""
    folder = context.run.model("sasrec").path
    seed_everything(context.config.seed)
    tracked = context.run.model("sasrec").tensorboard if context.config.tracking == "tensorboard" else None
    _, state = train_sasrec(context.dataset, context.config.sasrec, folder, context.config.seed,
                            context.config.eval.exclude_history, context.progress, context.device, tracked)
    plot_training(folder)
    return {"train_time_s": state.elapsed, "epochs": state.epoch, "best_epoch": state.best_epoch,
            "best_valid_ndcg@10": state.best_score}
