"""The stages a run is made of, and ``alignrec run`` that chains them.

A run directory holds ``config.yaml`` (resolved), ``data/`` (the prepared
dataset), one folder per model (``metrics.json``, rankings, checkpoints) and
``summary.json``. Re-running skips every stage whose outputs exist and were
made with the same settings by the same code (``alignrec.provenance``: the
alignrec version and those of torch, transformers and peft); a half-trained
SASRec resumes from its checkpoint. A stage made by other code is recomputed,
except a SASRec checkpoint, which is refused with the way to retrain (it may
be a long run the user wants to keep).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console

from alignrec.config import DataConfig, RunConfig, check_config, save_config, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.data.prepare import prepare_dataset
from alignrec.data.split import history
from alignrec.device import resolve_device
from alignrec.errors import AlignrecError
from alignrec.eval.compare import collect_metrics, markdown_table, print_comparison
from alignrec.eval.evaluator import evaluate_rankings, write_evaluation
from alignrec.eval.ranking import rank_all_users
from alignrec.io import atomic_open, read_json, sha256_file, write_json
from alignrec.models.mostpop import MostPop
from alignrec.provenance import code_versions, describe_change, environment
from alignrec.train.sasrec import train_sasrec

if TYPE_CHECKING:
    from alignrec.tokenize.artifacts import TokenizerArtifact

console = Console(stderr=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _inputs_unchanged(dataset: SequenceDataset) -> bool:
    """Every input file named in the manifest still has the recorded sha256."""
    for name, digest in dataset.manifest.get("sha256", {}).items():
        path = Path(name)
        if path.is_absolute() and (not path.is_file() or sha256_file(path) != digest):
            return False
    return True


def load_or_prepare(config: DataConfig, folder: Path) -> SequenceDataset:
    """Reuse ``folder`` when it was prepared with the same settings from unchanged files."""
    marker = folder / "data_config.json"
    settings = {"data": to_dict(config), "code": code_versions()}
    if marker.is_file() and read_json(marker) == settings:
        try:
            dataset = SequenceDataset.load(folder)
        except AlignrecError:
            dataset = None
        if dataset is not None and _inputs_unchanged(dataset):
            return dataset
    started = time.perf_counter()
    dataset = prepare_dataset(config, folder)
    write_json(marker, settings)
    console.print(
        f"[bold]data[/] {dataset.name}: {dataset.num_users:,} users, {dataset.num_items:,} items, "
        f"{dataset.num_interactions:,} interactions ({time.perf_counter() - started:.1f} s)"
    )
    return dataset


def _stage_settings(dataset: SequenceDataset, config: RunConfig, model: str) -> dict[str, Any]:
    """What a stage's result depends on; a rerun with equal settings skips the stage."""
    settings: dict[str, Any] = {"data": dataset.fingerprint(), "eval": to_dict(config.eval), "code": code_versions()}
    if model == "sasrec":
        settings.update({"sasrec": to_dict(config.sasrec), "seed": config.seed})
    if model == "llm":
        settings.update({"llm": to_dict(config.llm), "tokenize": to_dict(config.tokenize), "seed": config.seed})
    return settings


def run_mostpop(dataset: SequenceDataset, out: Path, config: RunConfig) -> dict[str, Any]:
    started = time.perf_counter()
    model = MostPop(dataset, "test")
    rankings = rank_all_users(model, dataset, "test", max(config.eval.ks), config.eval.exclude_history)
    result = evaluate_rankings(
        dataset, rankings, "test", "mostpop", config.eval.ks, config.eval.exclude_history
    )
    settings = _stage_settings(dataset, config, "mostpop")
    write_evaluation(out, result, dataset, settings, {"wall_time_s": time.perf_counter() - started})
    return read_json(out / "metrics.json")


def run_sasrec(dataset: SequenceDataset, out: Path, config: RunConfig) -> dict[str, Any]:
    started = time.perf_counter()
    seed_everything(config.seed)
    _, result, state = train_sasrec(
        dataset, config.sasrec, out, config.seed, config.eval.ks, config.eval.exclude_history,
        device=resolve_device(config.device),
    )
    settings = _stage_settings(dataset, config, "sasrec")
    extra = {
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": state.elapsed,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "best_valid_ndcg@10": state.best_score,
    }
    write_evaluation(out, result, dataset, settings, extra)
    plot_training(out)
    return read_json(out / "metrics.json")


def plot_training(out: Path) -> None:
    """``training.png``: loss and validation NDCG@10 per epoch."""
    import csv

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


STAGES: dict[str, Callable[[SequenceDataset, Path, RunConfig], dict[str, Any]]] = {
    "mostpop": run_mostpop,
    "sasrec": run_sasrec,
}


def _finished(out: Path, dataset: SequenceDataset, config: RunConfig, model: str) -> bool:
    metrics = out / "metrics.json"
    if not metrics.is_file():
        return False
    recorded = read_json(metrics).get("config") or {}
    settings = _stage_settings(dataset, config, model)
    if recorded == settings:
        return True
    if {**recorded, "code": settings["code"]} == settings:
        console.print(f"[yellow]{model}[/]: made by other code ({describe_change(recorded.get('code'))}); "
                      "computing it again")
    return False


def tokenize_stage(dataset: SequenceDataset, out: Path, config: RunConfig) -> Path:
    """``out/tokens`` for the LLM stage; reused when made with the same data and settings."""
    from alignrec.tokenize.artifacts import load_artifact
    from alignrec.tokenize.stage import summary_lines, tokenize_dataset

    tokens = out / "tokens"
    settings = {"data": dataset.fingerprint(), "tokenize": to_dict(config.tokenize), "seed": config.seed,
                "code": code_versions(),
                "sasrec": _stage_settings(dataset, config, "sasrec") if config.tokenize.features != "text" else None}
    marker = tokens / "stage.json"
    if marker.is_file() and read_json(marker) == settings:
        try:
            load_artifact(tokens)
            console.print(f"[bold]tokenize[/]: done earlier, skipped ({tokens})")
            return tokens
        except AlignrecError:
            pass
    console.print("[bold]tokenize[/]: item codes")
    seed_everything(config.seed)
    sasrec = out / "sasrec" if config.tokenize.features != "text" else None
    artifact = tokenize_dataset(dataset, sasrec, config.tokenize, config.seed, tokens)
    for line in summary_lines(artifact.report):
        console.print(line, highlight=False)
    write_json(marker, settings)
    return tokens


def llm_stage(
    dataset: SequenceDataset, tokens: Path, out: Path, config: RunConfig, discard_stale: bool = True
) -> dict[str, Any]:
    """Fine-tune + rank. Checkpoints made with other settings or code are never resumed: ``alignrec
    run`` discards them (``discard_stale``), ``alignrec train llm`` refuses them with the fix."""
    import shutil

    settings = _stage_settings(dataset, config, "llm")
    marker = out / "stage.json"
    recorded = read_json(marker) if marker.is_file() else None
    stale = recorded != settings and (recorded is not None or any((out / "checkpoints").glob("checkpoint-*")))
    if stale:
        if recorded is None:
            what = "checkpoints with no record of their settings"
        elif {**recorded, "code": settings["code"]} != settings:
            what = "checkpoints made with other settings"
        else:
            what = f"checkpoints made by other code ({describe_change(recorded.get('code'))})"
        if not discard_stale:
            raise AlignrecError(f"{out / 'checkpoints'}: {what}; use a new --out, or delete {out} to train again")
        console.print(f"[yellow]llm[/]: {what}; training from scratch in {out}")
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(marker, settings)
    return run_llm(dataset, tokens, out, config)


def compare_on_llm_users(dataset: SequenceDataset, out: Path, config: RunConfig) -> str | None:
    """When the LLM ranked a user subset, every model again on exactly those users (with 95% CIs)."""
    from alignrec.eval.subset import score_runs_on_subset, subset_markdown
    from alignrec.llm.finetune import subset_users

    if "llm" not in config.models or config.llm.test_users <= 0:
        return None
    users = subset_users(dataset, config.llm.test_users, config.seed)
    runs = [out / m for m in config.models if (out / m / "rankings_test.jsonl").is_file()]
    table = subset_markdown(score_runs_on_subset(dataset, runs, users, config.eval.ks, config.eval.exclude_history))
    title = f"Test users ranked by every model (a fixed subset of {len(users)}, seed {config.seed}):"
    console.print(title)
    Console().print(table, highlight=False)
    return f"{title}\n\n{table}"


def run_pipeline(config: RunConfig, out: str | Path) -> dict[str, Any]:
    """prepare -> each model (the LLM after tokenize) -> comparison; finished stages are skipped on a rerun."""
    check_config(config)  # a config built in code gets the checks a loaded one had
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved_config = out / "config.yaml"
    if saved_config.is_file() and (out / "data").is_dir():
        console.print(f"[dim]resuming run in {out}[/]")
    save_config(config, saved_config)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    started = time.perf_counter()
    dataset = load_or_prepare(config.data, out / "data")
    for model in config.models:
        model_dir = out / model
        if _finished(model_dir, dataset, config, model):
            console.print(f"[bold]{model}[/]: done earlier, skipped ({model_dir / 'metrics.json'})")
            continue
        console.print(f"[bold]{model}[/]: training and evaluating")
        if model == "llm":
            llm_stage(dataset, tokenize_stage(dataset, out, config), model_dir, config)
        else:
            STAGES[model](dataset, model_dir, config)
    rows = collect_metrics([out / m for m in config.models])
    print_comparison(rows, Console())
    subset_table = compare_on_llm_users(dataset, out, config)
    summary = {
        "name": config.name,
        "dataset": dataset.name,
        "wall_time_s": time.perf_counter() - started,
        "models": {row["model"]: row["metrics"] for row in rows},
        "config": to_dict(config),
        "environment": environment(),
    }
    write_json(out / "summary.json", summary)
    with atomic_open(out / "comparison.md") as handle:
        handle.write(markdown_table(rows) + "\n")
        if subset_table:
            handle.write("\n" + subset_table + "\n")
    from alignrec.report.build import write_report

    console.print(f"[bold]report[/]: {write_report(out)[0]}")
    return summary


def run_tokenize(
    data_dir: str | Path, sasrec_dir: str | Path | None, out: str | Path, config: RunConfig
) -> TokenizerArtifact:
    """``alignrec tokenize``: item code tokens from a prepared dataset and a SASRec run."""
    # Imported here: scikit-learn and scipy cost a second at start-up for every other command.
    from alignrec.tokenize.stage import summary_lines, tokenize_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    dataset = SequenceDataset.load(data_dir)
    artifact = tokenize_dataset(dataset, sasrec_dir, config.tokenize, config.seed, out)
    for line in summary_lines(artifact.report):
        console.print(line, highlight=False)
    return artifact


def run_llm(dataset: SequenceDataset, tokens_dir: str | Path, out: Path, config: RunConfig) -> dict[str, Any]:
    """Fine-tune the LLM on the alignment tasks, then rank the test users by constrained beam search."""
    from alignrec.llm.finetune import load_finetuned, subset_users, train_llm
    from alignrec.tokenize.artifacts import load_artifact

    started = time.perf_counter()
    seed_everything(config.seed)
    tokens_dir = Path(tokens_dir)
    artifact = load_artifact(tokens_dir)
    device = resolve_device(config.device)
    summary = train_llm(dataset, artifact, tokens_dir, config.llm, out, config.seed, device)
    if int(os.environ.get("RANK", 0)) != 0:
        return {}
    decode_started = time.perf_counter()
    recommender = load_finetuned(out, artifact, config.llm, config.seed, dataset, device)
    users = subset_users(dataset, config.llm.test_users, config.seed)
    k = max(config.eval.ks)
    histories = [history(dataset, int(u), "test") for u in users]
    # The k the table needs, searched as the recommender searches for any caller (precompute, serve).
    items, _ = recommender.recommend(histories, k, config.eval.exclude_history, progress=True)
    rankings = {int(u): row[row >= 0].tolist() for u, row in zip(users, items, strict=True)}
    result = evaluate_rankings(dataset, rankings, "test", "llm", config.eval.ks, config.eval.exclude_history, users)
    settings = _stage_settings(dataset, config, "llm")
    extra = {
        "wall_time_s": time.perf_counter() - started,
        "train_time_s": summary.get("train_s"),
        "decode_time_s": time.perf_counter() - decode_started,
        "decode_users_per_s": len(users) / max(time.perf_counter() - decode_started, 1e-9),
        "tokens_per_s": summary.get("tokens_per_s"),
    }
    write_evaluation(out, result, dataset, settings, extra)
    return read_json(out / "metrics.json")
