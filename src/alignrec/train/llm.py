"""The LLM's training loop: LoRA on the backbone + the new code-token rows, on the alignment tasks.

Built on transformers' Trainer (checkpoints, resume, gradient accumulation, bf16
autocast, DDP under ``torchrun``) and peft (LoRA; ``trainable_token_indices``
trains only the code tokens' rows, in the output head too when it is tied).
What we add: a loss that computes logits only where a label follows and records
each task's loss, a wall-time budget that survives resumes, a CSV log with
tokens/s, and a validation Recall@10 by constrained beam search on a fixed user subset.

::

    RUN_DIR/
      config.yaml            resolved config
      tasks.json             examples per task, skipped tasks and why
      checkpoints/           Trainer checkpoints of the trainable weights (resume from the newest)
      train_log.csv          step, loss, loss per task, tokens/s, validation Recall@10 / NDCG@10
      task_loss.png          per-task loss curves + validation Recall@10
      model/                 adapter (LoRA + code rows) and vocab.json
      train_summary.json     time, tokens/s, examples/s, peak memory
"""

from __future__ import annotations

import csv
import os
import resource
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console

from alignrec.config import LLMConfig, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.device import use_bf16
from alignrec.errors import AlignrecError
from alignrec.eval.metrics import ndcg_at, recall_at
from alignrec.eval.subset import fixed_users, split_ranks
from alignrec.io import atomic_open, read_json, write_json
from alignrec.llm import compiled
from alignrec.llm.build import ADAPTER, TASK_NAMES, VOCAB, LLMBuild, build_llm, check_artifact_matches
from alignrec.llm.encoding import IGNORE, PackedDataset, collate, pack
from alignrec.llm.loss import training_loss
from alignrec.llm.tasks import build_mixture
from alignrec.llm.tasks.context import TaskContext
from alignrec.llm.vocab import CodeVocabulary
from alignrec.provenance import code_versions
from alignrec.rundir import claim, finish
from alignrec.seed import seed_everything
from alignrec.tokenize.artifacts import TokenizerArtifact, load_artifact
from alignrec.train.tracking import event_writer

if TYPE_CHECKING:
    from alignrec.catalog import TrainContext

console = Console(stderr=True)
TIME_FILE = "alignrec_time.json"


def save_adapter(model: torch.nn.Module, folder: Path) -> None:
    """LoRA weights + the trained code rows only (~20 MB for SmolLM2): peft would otherwise also
    store the whole resized embedding matrix, which the loader rebuilds from the backbone anyway."""
    model.save_pretrained(folder, save_embedding_layers=False)


def make_trainer_class():  # noqa: ANN202 - the class is built lazily: transformers is slow to import
    from transformers import Trainer

    class AlignmentTrainer(Trainer):
        """Trainer whose loss (:func:`alignrec.llm.loss.training_loss`) keeps per-task sums for the log."""

        def __init__(self, *args: Any, vocab: CodeVocabulary, config: LLMConfig, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.vocab = vocab
            self.loss_config = config
            self.task_sums: dict[int, list[float]] = {}
            self.tokens_seen = 0
            self.examples_seen = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
            total, per_task = training_loss(model, inputs, self.vocab, self.loss_config.code_softmax,
                                            self.loss_config.segment_attention)
            for task, (value, count) in per_task.items():
                sums = self.task_sums.setdefault(task, [0.0, 0])
                sums[0] += value
                sums[1] += count
            self.tokens_seen += int(inputs["num_tokens"])
            self.examples_seen += int(inputs["num_examples"])
            count = num_items_in_batch if num_items_in_batch is not None else (inputs["labels"][:, 1:] != IGNORE).sum()
            loss = total / torch.as_tensor(count, dtype=total.dtype).clamp(min=1)
            return (loss, None) if return_outputs else loss

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            """A checkpoint holds the trainable weights only (LoRA and the code rows, ~20 MB for SmolLM2, not
            ~255 MB with the resized embedding matrix); the optimizer's state beside it is theirs alone too."""
            if not self.args.should_save:
                return
            folder = Path(output_dir or self.args.output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            save_adapter(self.accelerator.unwrap_model(self.model), folder)
            torch.save(self.args, folder / "training_args.bin")

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs:
                for task, (value, count) in sorted(self.task_sums.items()):
                    logs[f"loss_{TASK_NAMES[task]}"] = value / max(count, 1)
                self.task_sums.clear()
            super().log(logs, start_time)

    return AlignmentTrainer


def subset_metrics(
    recommend, dataset: SequenceDataset, users: np.ndarray, split: str, k: int = 10
) -> dict[str, float]:
    """Recall@k and NDCG@k of ``recommend(histories, k)`` on ``users`` (history items excluded)."""
    ranks = split_ranks(recommend, dataset, users, split, k)
    return {f"recall@{k}": recall_at(ranks, k), f"ndcg@{k}": ndcg_at(ranks, k)}


def make_callbacks(out: Path, config: LLMConfig, evaluate, writer=None):  # noqa: ANN001, ANN201 - TrainerCallbacks
    """The time budget and ``train_log.csv``; validation metrics also go to ``writer`` (TensorBoard) when given."""
    from transformers import TrainerCallback

    class Budget(TrainerCallback):
        """Stops after ``max_minutes`` of training, counted across resumes; saves before stopping."""

        def __init__(self) -> None:
            self.before = 0.0
            self.started = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            latest = latest_checkpoint(out / "checkpoints")
            self.before = read_json(latest / TIME_FILE)["train_s"] if latest and (latest / TIME_FILE).is_file() else 0.0
            self.started = time.perf_counter()

        def elapsed(self) -> float:
            return self.before + time.perf_counter() - self.started

        def on_step_end(self, args, state, control, **kwargs):
            if config.max_minutes and self.elapsed() >= config.max_minutes * 60:
                control.should_training_stop = True
                control.should_save = True

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and state.is_world_process_zero:
                write_json(folder / TIME_FILE, {"train_s": self.elapsed()})

    class Log(TrainerCallback):
        """train_log.csv (rank 0): one row per logging step; validation metrics when evaluated."""

        def __init__(self, budget: Budget) -> None:
            self.budget = budget
            self.trainer = None

        def on_train_begin(self, args, state, control, **kwargs):
            # the starting point of the validation curve (not on a resume: it was logged then)
            if state.is_world_process_zero and state.global_step == 0 and config.eval_steps:
                append_log(out / "train_log.csv", {"step": 0, "elapsed_s": 0.0,
                                                   **{f"valid_{k}": v for k, v in evaluate().items()}}, 0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            row = {"step": state.global_step, "elapsed_s": round(self.budget.elapsed(), 1), **logs}
            if self.trainer is not None:
                row["tokens_per_s"] = self.trainer.tokens_seen / max(time.perf_counter() - self.budget.started, 1e-9)
            if config.eval_steps and state.global_step % config.eval_steps == 0:
                row.update({f"valid_{k}": v for k, v in evaluate().items()})
            append_log(out / "train_log.csv", row, state.global_step)
            if writer is not None:
                writer.add_scalar("train/tokens_per_s", row.get("tokens_per_s", 0.0), state.global_step)
                for key in (k for k in row if k.startswith("valid_")):
                    writer.add_scalar(key.replace("valid_", "valid/"), row[key], state.global_step)
                writer.flush()

    budget = Budget()
    return budget, Log(budget)


LOG_COLUMNS = ("step", "elapsed_s", "loss", "learning_rate", "grad_norm", "tokens_per_s",
               *(f"loss_{t}" for t in TASK_NAMES), "valid_recall@10", "valid_ndcg@10")


def append_log(path: Path, row: dict[str, Any], step: int) -> None:
    """Append a row, first dropping rows at or after ``step`` (left by an interrupted run)."""
    rows = []
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["step"]) < step]
    rows.append({k: row.get(k, "") for k in LOG_COLUMNS})
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def final_validation(out: Path, step: int, evaluate) -> dict[str, float]:  # noqa: ANN001
    """The last step's validation metrics: from the log when that step was just evaluated, else computed."""
    if (out / "train_log.csv").is_file():
        with open(out / "train_log.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if rows and int(rows[-1]["step"]) == step and rows[-1].get("valid_recall@10"):
            return {k[len("valid_"):]: float(v) for k, v in rows[-1].items() if k.startswith("valid_") and v}
    return evaluate()


def latest_checkpoint(folder: Path) -> Path | None:
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def plot_task_losses(out: Path) -> None:
    """task_loss.png: each task's training loss against steps, and validation Recall@10."""
    from alignrec import figures

    if not (out / "train_log.csv").is_file():
        return
    with open(out / "train_log.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with atomic_open(out / "task_loss.png", "wb") as handle:
        handle.write(figures.png(figures.training_curves(*figures.log_curves(rows)), dpi=110))


def training_rows(dataset: SequenceDataset, prepared: LLMBuild, config: LLMConfig, seed: int):  # noqa: ANN201
    """The weighted task mixture, encoded and packed; and the mixture's report."""
    context = TaskContext.from_dataset(dataset, config.history, config.negatives, config.history_titles)
    mixture = build_mixture(context, config.tasks, seed)
    if not mixture.examples:
        raise AlignrecError("llm.tasks: no task produced examples; enable at least llm.tasks.sequential")
    encoded = prepared.encoder.encode(mixture.examples)
    rows = pack(encoded, config.max_tokens)
    report = {
        "examples": mixture.counts,
        "skipped": mixture.skipped,
        "tokens": int(sum(len(e.input_ids) for e in encoded)),
        "target_tokens": int(sum(int((e.labels != IGNORE).sum()) for e in encoded)),
        "packed_rows": len(rows),
        "max_tokens": config.max_tokens,
    }
    return rows, report


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def train_llm(
    dataset: SequenceDataset, artifact: TokenizerArtifact, config: LLMConfig, out: Path, seed: int,
    device: torch.device | str = "cpu", tensorboard: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune, resuming from ``out/checkpoints`` when it holds one; returns the training summary.
    ``tensorboard``: a folder for TensorBoard event files (the Trainer's logs, validation metrics).

    Whether the checkpoints belong to these settings is the run directory's rule
    (``alignrec.rundir.claim``), checked before this is called.
    """
    from transformers import TrainingArguments, set_seed

    if config.eval_steps and config.eval_steps % config.log_steps:
        raise AlignrecError(f"llm.eval_steps={config.eval_steps} must be a multiple of llm.log_steps={config.log_steps}")
    rank, world_size = world()
    on_cpu = torch.device(device).type == "cpu"
    set_seed(seed)
    prepared = build_llm(config, artifact, dataset, seed, device=device)
    rows, report = training_rows(dataset, prepared, config, seed)
    if rank == 0:
        for name, why in report["skipped"].items():
            console.print(f"[yellow]note[/]: task {name} skipped: {why}")
        if config.compile_elementwise and on_cpu and not compiled.compiler_available():
            console.print("[yellow]note[/]: llm.compile_elementwise: no C++ compiler ($CXX, g++, clang++ or c++) "
                          "on PATH, so the norms, gates and RoPE run eager; install one (apt-get install g++), or set "
                          "llm.compile_elementwise=false")
        write_json(out / "tasks.json", report)
    recommender = prepared.recommender  # validation decodes as the finished run will
    users = fixed_users(dataset, config.eval_users, seed)
    writer = event_writer(tensorboard) if rank == 0 else None
    budget, log = make_callbacks(out, config, lambda: subset_metrics(recommender.recommend, dataset, users, "valid"),
                                 writer)
    tracking = []
    if writer is not None:
        from transformers.integrations import TensorBoardCallback

        tracking = [TensorBoardCallback(tb_writer=writer)]
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1,
        logging_steps=config.log_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        bf16=use_bf16(config.bf16, device),
        use_cpu=on_cpu,
        seed=seed,
        data_seed=seed,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        average_tokens_across_devices=False,
        ddp_backend=("gloo" if on_cpu else "nccl") if world_size > 1 else None,
        disable_tqdm=rank != 0,
    )
    trainer = make_trainer_class()(
        model=prepared.model,
        args=args,
        train_dataset=PackedDataset(rows),
        data_collator=lambda batch: collate(batch, prepared.pad_id),
        callbacks=[budget, log, *tracking],
        vocab=prepared.vocab,
        config=config,
    )
    log.trainer = trainer
    resume = latest_checkpoint(out / "checkpoints")
    if resume is not None and rank == 0:
        console.print(f"[dim]resuming from {resume}[/]")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - started
    summary: dict[str, Any] = {}
    if rank == 0:
        save_adapter(trainer.model, out / ADAPTER)
        write_json(out / ADAPTER / VOCAB, {
            "base_vocab": prepared.vocab.base_vocab, "levels": prepared.vocab.levels,
            "codebook_size": prepared.vocab.codebook_size, "names": list(prepared.vocab.names),
            "backbone": prepared.source, "token_init": config.token_init, "pad_id": prepared.pad_id,
            "code_softmax": config.code_softmax,
        })
        final = final_validation(out, trainer.state.global_step,
                                 lambda: subset_metrics(recommender.recommend, dataset, users, "valid")
                                 ) if config.eval_steps else {}  # eval_steps 0: no validation at all
        summary = {
            "steps": trainer.state.global_step,
            "train_s": budget.elapsed(),
            "wall_s_this_process": wall,
            "tokens_per_s": trainer.tokens_seen / max(wall, 1e-9),
            "examples_per_s": trainer.examples_seen / max(wall, 1e-9),
            "train_loss": result.training_loss,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "world_size": world_size,
            "valid_subset_users": int(len(users)),
            **{f"valid_subset_{k}": v for k, v in final.items()},
            "tasks": report,
        }
        write_json(out / "train_summary.json", summary)
        plot_task_losses(out)
    return summary


def make_tokens(context: TrainContext) -> Path:
    """The run's ``tokens/`` (item codes from SASRec's embeddings and the items' text), made unless
    made earlier with the same settings; tokens given to ``alignrec train llm --tokens`` are used as they are."""
    from alignrec.tokenize.stage import summary_lines, tokenize_dataset

    run, config, dataset = context.run, context.config, context.dataset
    if run.tokens_given:
        return run.tokens
    settings = {"data": dataset.fingerprint(), "tokenize": to_dict(config.tokenize), "seed": config.seed,
                "code": code_versions(), "needs": context.needs}
    started = run.tokens.is_dir() and any(run.tokens.iterdir())
    if claim(run.tokens, settings, "item codes", "clear", started) == "done":
        try:
            load_artifact(run.tokens)
            console.print(f"[bold]tokenize[/]: done earlier, skipped ({run.tokens})")
            return run.tokens
        except AlignrecError:  # recorded as done but unreadable: made again
            shutil.rmtree(run.tokens)
            claim(run.tokens, settings, "item codes", "clear")
    console.print("[bold]tokenize[/]: item codes")
    seed_everything(config.seed)
    sasrec = run.model("sasrec").path if config.tokenize.features != "text" else None
    artifact = tokenize_dataset(dataset, sasrec, config.tokenize, config.seed, run.tokens)
    for line in summary_lines(artifact.report):
        console.print(line, highlight=False)
    finish(run.tokens, settings)
    return run.tokens


def train_stage(context: TrainContext) -> dict[str, Any]:
    """The catalog's trainer: item codes, then fine-tuning (resumed from ``llm/checkpoints``)."""
    tokens = make_tokens(context)
    seed_everything(context.config.seed)
    artifact = load_artifact(tokens)
    check_artifact_matches(context.dataset, artifact, tokens)
    folder = context.run.model("llm")
    summary = train_llm(context.dataset, artifact, context.config.llm, folder.path, context.config.seed,
                        context.device, folder.tensorboard if context.config.tracking == "tensorboard" else None)
    return {"train_time_s": summary.get("train_s"), "tokens_per_s": summary.get("tokens_per_s")}
