"""``alignrec run``: prepare the data, then one loop over ``config.models``.

For each model, through its catalog entry (``alignrec.catalog``): train it if it
trains, load it from the run directory, rank the test users through the
recommender contract, evaluate, write. What is done earlier is skipped by the run
directory's one rule (``alignrec.rundir``): a stage's settings include the data,
its config sections, the seed, the code versions and those of the models it is
built from; a training run made with other settings is refused with the fix.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from alignrec.catalog import TrainContext, entry, model_names
from alignrec.config import DataConfig, RunConfig, check_config, recorded_dict, save_config, to_dict
from alignrec.data.dataset import SequenceDataset
from alignrec.data.prepare import prepare_dataset
from alignrec.device import resolve_device
from alignrec.errors import AlignrecError
from alignrec.eval.compare import collect_metrics, markdown_table, print_comparison
from alignrec.eval.evaluator import evaluate_rankings, write_evaluation
from alignrec.eval.ranking import rank_users
from alignrec.eval.subset import fixed_users, read_rankings, score_on_subset, subset_markdown
from alignrec.io import atomic_open, read_json, sha256_file, write_json
from alignrec.provenance import code_versions, environment
from alignrec.rundir import RECORD, RunDir, claim, finish
from alignrec.seed import seed_everything

console = Console(stderr=True)

EVALUATION_RECORD = "evaluation.json"
"""A model folder's second record: the settings its metrics.json and rankings were made with."""


def _inputs_unchanged(dataset: SequenceDataset) -> bool:
    """Every input file named in the manifest still has the recorded sha256."""
    for name, digest in dataset.manifest.get("sha256", {}).items():
        path = Path(name)
        if path.is_absolute() and (not path.is_file() or sha256_file(path) != digest):
            return False
    return True


NOT_OUTPUTS = (RECORD, EVALUATION_RECORD, "config.yaml", "data", "tokens")
"""What a folder may hold besides a stage's outputs (``alignrec train`` writes its config beside them)."""


def _has_outputs(folder: Path) -> bool:
    """Files there other than records and inputs: made by an alignrec that kept no record, if none is there."""
    return folder.is_dir() and any(p.name not in NOT_OUTPUTS for p in folder.iterdir())


def wait_for_claim(folder: Path, trained: dict[str, Any], timeout_s: float = 600.0) -> None:
    """On torchrun's other processes: start training only once rank 0 has claimed ``folder`` for these
    settings. Before that, a file this process wrote there would look to rank 0 like the outputs of
    a run that kept no record, and rank 0 would refuse the folder. Rank 0 failing ends the job (torchrun
    stops every process), so the wait ends either way."""
    record, deadline = folder / RECORD, time.monotonic() + timeout_s
    while not (record.is_file() and read_json(record).get("settings") == trained):
        if time.monotonic() > deadline:
            raise AlignrecError(f"{folder}: rank 0 did not claim it for training within {timeout_s:.0f} s; "
                                "run the job again")
        time.sleep(0.05)


def load_or_prepare(config: DataConfig, folder: Path) -> SequenceDataset:
    """The prepared dataset in ``folder``, made again unless made with these settings from unchanged files."""
    settings = {"data": to_dict(config), "code": code_versions()}
    if claim(folder, settings, "the prepared dataset", "clear", _has_outputs(folder)) == "done":
        try:
            dataset = SequenceDataset.load(folder)
        except AlignrecError:
            dataset = None
        if dataset is not None and _inputs_unchanged(dataset):
            return dataset
        shutil.rmtree(folder)  # recorded as done, but unreadable or its input files changed
        claim(folder, settings, "the prepared dataset", "clear")
    started = time.perf_counter()
    dataset = prepare_dataset(config, folder)
    finish(folder, settings)
    console.print(
        f"[bold]data[/] {dataset.name}: {dataset.num_users:,} users, {dataset.num_items:,} items, "
        f"{dataset.num_interactions:,} interactions ({time.perf_counter() - started:.1f} s)"
    )
    return dataset


def training_settings(name: str, dataset: SequenceDataset, config: RunConfig) -> dict[str, Any]:
    """What a model's trained files depend on: another value anywhere here is another model."""
    model = entry(name)
    sections = {
        section: {k: v for k, v in recorded_dict(getattr(config, section)).items() if k not in model.not_trained}
        for section in model.sections
    }
    return {"data": dataset.fingerprint(), **sections, "seed": config.seed, "code": code_versions(),
            "needs": {other: training_settings(other, dataset, config) for other in model.needs(config)}}


def evaluation_settings(name: str, dataset: SequenceDataset, config: RunConfig) -> dict[str, Any]:
    """What a model's metrics.json depends on: its training, every setting of its sections, the evaluation."""
    model = entry(name)
    return {**training_settings(name, dataset, config),
            **{section: recorded_dict(getattr(config, section)) for section in model.sections},
            "eval": to_dict(config.eval), "test_users": model.test_users(config)}


def run_model(
    name: str, dataset: SequenceDataset, run: RunDir, config: RunConfig, progress: bool = True
) -> dict[str, Any]:
    """Train (if it trains), load, rank, evaluate and write one model; skipped when done earlier.

    Returns its metrics.json ({} on the other processes of a multi-process training run).
    """
    model = entry(name)
    folder = run.model(name)
    device = resolve_device(config.device)
    trainer = model.trainer()
    if int(os.environ.get("RANK", 0)) != 0:  # torchrun's other processes train with rank 0, which keeps the records
        if trainer is not None:
            trained = training_settings(name, dataset, config)
            wait_for_claim(folder.path, trained)
            trainer(TrainContext(dataset, run, config, device, trained["needs"], progress=False))
        return {}
    settings = evaluation_settings(name, dataset, config)
    trained = training_settings(name, dataset, config) if trainer is not None else None
    if trained is not None:  # first: a refused training run must leave every record as it was
        claim(folder.path, trained, f"{name}'s training", "refuse",
              started=_has_outputs(folder.path) and not (folder.path / RECORD).is_file())
    if claim(folder.path, settings, f"{name}'s evaluation", "overwrite", record=EVALUATION_RECORD) == "done" \
            and folder.metrics.is_file():
        console.print(f"[bold]{name}[/]: done earlier, skipped ({folder.metrics})")
        return read_json(folder.metrics)
    console.print(f"[bold]{name}[/]: {'training and ' if model.train else ''}evaluating")
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if trainer is not None and trained is not None:
        seed_everything(config.seed)
        extra = trainer(TrainContext(dataset, run, config, device, trained["needs"], progress))
        finish(folder.path, trained)
    recommender = model.loader()(run, dataset, "test")
    users = fixed_users(dataset, model.test_users(config), config.seed)
    ranking_started = time.perf_counter()
    with torch.no_grad():
        rankings = rank_users(recommender, dataset, users, "test", config.eval, progress)
    ranking_s = time.perf_counter() - ranking_started
    result = evaluate_rankings(dataset, rankings, "test", name, config.eval, users)
    extra.update({"wall_time_s": time.perf_counter() - started, "rank_time_s": ranking_s,
                  "rank_users_per_s": len(users) / max(ranking_s, 1e-9)})
    write_evaluation(folder.path, result, dataset, settings, extra)
    finish(folder.path, settings, record=EVALUATION_RECORD)
    return read_json(folder.metrics)


def compare_on_subset(
    dataset: SequenceDataset, rankings: dict[str, dict[int, list[int]]], config: RunConfig
) -> str | None:
    """When a model ranked a user subset, every model again on exactly those users (with 95% CIs)."""
    counts = [entry(m).test_users(config) for m in config.models]
    count = min((c for c in counts if c > 0), default=0)
    if count <= 0:
        return None
    users = fixed_users(dataset, count, config.seed)
    table = subset_markdown(score_on_subset(dataset, rankings, users, config.eval))
    title = f"Test users ranked by every model (a fixed subset of {len(users)}, seed {config.seed}):"
    console.print(title)
    Console().print(table, highlight=False)
    return f"{title}\n\n{table}"


def compare_paired(
    dataset: SequenceDataset, rankings: dict[str, dict[int, list[int]]], config: RunConfig
) -> str | None:
    """Every model against SASRec on the users all of them ranked: relative change and paired p-value."""
    from alignrec.eval.paired import BASELINE as PAIRED_BASELINE
    from alignrec.eval.paired import common_users, paired_markdown, paired_rows

    if PAIRED_BASELINE not in rankings or len(rankings) < 2:
        return None
    users = common_users(dataset, rankings)
    table = paired_markdown(paired_rows(dataset, rankings, PAIRED_BASELINE, users, config.eval, seed=config.seed),
                            PAIRED_BASELINE)
    title = (f"Against {PAIRED_BASELINE} on the {len(users)} users every model ranked: change relative to it and "
             "the p-value of a paired sign-flip permutation test (10,000 resamples, two-sided):")
    console.print(title)
    Console().print(table, highlight=False)
    return f"{title}\n\n{table}"


def _ordered(models: list[str]) -> list[str]:
    """The catalog's order (the order of every table), models outside it last."""
    known = model_names()
    return sorted(models, key=lambda m: known.index(m) if m in known else len(known))


def run_pipeline(config: RunConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """prepare -> each model -> comparison and report; finished stages are skipped on a rerun."""
    check_config(config)  # a config built in code gets the checks a loaded one had
    run = RunDir(out)
    run.root.mkdir(parents=True, exist_ok=True)
    if run.config.is_file() and run.data.is_dir():
        console.print(f"[dim]resuming run in {run.root}[/]")
    save_config(config, run.config)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    started = time.perf_counter()
    dataset = load_or_prepare(config.data, run.data)
    for name in config.models:
        run_model(name, dataset, run, config, progress)
    if int(os.environ.get("RANK", 0)) != 0:
        return {}
    folders = [run.model(m).path for m in _ordered(config.models)]
    rows = collect_metrics(folders)
    print_comparison(rows, Console())
    rankings = read_rankings(dataset, folders)  # read once, for both tables on the same users
    subset_table = compare_on_subset(dataset, rankings, config)
    paired_table = compare_paired(dataset, rankings, config)
    summary = {
        "name": config.name,
        "dataset": dataset.name,
        "wall_time_s": time.perf_counter() - started,
        "models": {row["model"]: row["metrics"] for row in rows},
        "config": to_dict(config),
        "environment": environment(),
    }
    write_json(run.summary, summary)
    with atomic_open(run.comparison) as handle:
        handle.write(markdown_table(rows) + "\n")
        for table in (subset_table, paired_table):
            if table:
                handle.write("\n" + table + "\n")
    from alignrec.report.build import write_report

    console.print(f"[bold]report[/]: {write_report(run.root)[0]}")
    return summary


def train_model(
    name: str, config: RunConfig, data: str | Path, out: str | Path, tokens: str | Path | None = None
) -> dict[str, Any]:
    """``alignrec train NAME``: one model into ``out`` itself, from a prepared dataset (and, for the
    LLM, item codes from ``alignrec tokenize``), by the same rule and steps as in a run."""
    needs = entry(name).needs(config)
    if needs and tokens is None:
        raise AlignrecError(f"train {name}: it is built from {', '.join(needs)}; give the tokenizer output made "
                            "from it with --tokens TOK_DIR (`alignrec tokenize`)")
    run = RunDir(out, data=data, tokens=tokens, single=name)
    run.root.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", 0)) == 0:  # one writer: another's temporary file would look like an output
        save_config(config, run.config)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    dataset = SequenceDataset.load(run.data)
    return run_model(name, dataset, run, config)


def run_tokenize(data_dir: str | Path, sasrec_dir: str | Path | None, out: str | Path, config: RunConfig):  # noqa: ANN201
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
