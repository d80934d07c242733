"""``RUN_DIR/report.html``: the run's plots on one page, images embedded.

Each section reads its own inputs (``<model>/metrics.json``, ``llm/train_log.csv``,
``tokens/``, ``<model>/rankings_test.jsonl``, ``data/``); a section whose inputs are
missing is skipped with a note, so the report works for any stage of a run.
The PNGs are embedded as base64: the report is one file, written atomically,
that can be mailed, attached to CI or opened offline without its folder.
"""

from __future__ import annotations

import base64
import csv
import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from alignrec import __version__, figures
from alignrec.catalog import model_names
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.eval.compare import SHORT_NOTE, flagged, metric_cell
from alignrec.io import atomic_open, read_json
from alignrec.rundir import ModelDir, RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POPULARITY_K = 10


@dataclass
class Section:
    title: str
    body: str = ""
    skipped: str | None = None
    """Why the section has no content (its inputs are missing)."""


@dataclass
class Model:
    name: str
    folder: Path
    metrics: dict[str, Any]

    @property
    def label(self) -> str:
        """The name, with the user count when the model was scored on a subset (the LLM)."""
        subset = self.metrics.get("diagnostics", {}).get("user_subset")
        return f"{self.name} ({self.metrics['num_users']:,} users)" if subset else self.name


@dataclass
class RunInputs:
    folder: Path
    dataset: SequenceDataset | None
    dataset_note: str | None
    models: list[Model]


def _image(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figures.png(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _models(folder: Path) -> list[Model]:
    found = []
    for child in sorted(p for p in folder.iterdir() if ModelDir(p).metrics.is_file()):
        metrics = read_json(ModelDir(child).metrics)
        found.append(Model(str(metrics.get("model", child.name)), child, metrics))
    rank = {name: i for i, name in enumerate(model_names())}  # the catalog's order
    return sorted(found, key=lambda m: (rank.get(m.folder.name, len(rank)), m.folder.name))


def read_inputs(folder: Path) -> RunInputs:
    try:
        dataset, note = SequenceDataset.load(RunDir(folder).data), None
    except AlignrecError as exc:
        dataset, note = None, str(exc)
    return RunInputs(folder, dataset, note, _models(folder))


def accuracy_section(run: RunInputs) -> Section:
    section = Section("Accuracy against K")
    if not run.models:
        section.skipped = f"no <model>/metrics.json in {run.folder}"
        return section
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {"recall": {}, "ndcg": {}}
    for model in run.models:
        for metric, by_model in curves.items():
            points = sorted((int(key.split("@")[1]), value) for key, value in model.metrics["metrics"].items()
                            if key.startswith(f"{metric}@"))
            if points:
                by_model[model.label] = points
    columns = ("recall@10", "ndcg@10", "recall@50", "mrr", "coverage@10")
    rows = [[m.label, f"{m.metrics['num_users']:,}", *(metric_cell(m.metrics, c) for c in columns)] for m in run.models]
    section.body = _image(figures.metrics_at_k(curves["recall"], curves["ndcg"]), "Recall@K and NDCG@K") + _table(
        ["model", "users", *columns], rows)
    if flagged([m.metrics for m in run.models], columns):
        section.body += f"<p>{SHORT_NOTE}.</p>"
    if any(m.metrics.get("diagnostics", {}).get("user_subset") for m in run.models):
        section.body += ("<p>A model marked with a user count was ranked on a fixed subset of test users; "
                         "<code>comparison.md</code> scores every model on that same subset, with 95% intervals.</p>")
    return section


def training_section(run: RunInputs) -> Section:
    section = Section("LLM training")
    log = RunDir(run.folder).model("llm").file("train_log.csv")
    if not log.is_file():
        section.skipped = f"no {log} (this run did not fine-tune the LLM)"
        return section
    with open(log, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    losses, total, valid = figures.log_curves(rows)
    if not losses and not total:
        section.skipped = f"{log} holds no logged loss yet"
        return section
    section.body = _image(figures.training_curves(losses, total, valid), "training loss per task")
    if valid:
        best = max(valid, key=lambda p: p[1])
        section.body += (f"<p>{len(total)} logged steps up to step {max(int(r['step']) for r in rows)}; "
                         f"best validation Recall@10 {best[1]:.4f} at step {best[0]}.</p>")
    return section


def codes_section(run: RunInputs) -> Section:
    from alignrec.tokenize.artifacts import load_artifact
    from alignrec.tokenize.usage_plot import code_usage_figure

    section = Section("Item codes: usage per level")
    folder = RunDir(run.folder).tokens
    if not folder.is_dir():
        section.skipped = f"no {folder} (this run has no item tokenizer)"
        return section
    try:
        artifact = load_artifact(folder)
    except AlignrecError as exc:
        section.skipped = str(exc)
        return section
    title = f"{len(artifact.codes):,} items, {artifact.levels} levels of {artifact.codebook_size} codes"
    section.body = _image(code_usage_figure(artifact.codes, artifact.codebook_size, title), "code usage per level")
    levels = artifact.report.get("levels", [])
    if levels:
        section.body += _table(["level", "codes used", "utilisation", "perplexity", "max items per code"], [
            [str(r["level"]), f"{r['used']}/{artifact.codebook_size}", f"{r['utilisation']:.1%}",
             f"{r['perplexity']:.1f}", str(r["max_items_per_code"])] for r in levels])
    collisions = artifact.report.get("collisions", {})
    if "before" in collisions and "after" in collisions:
        section.body += (f"<p>Items sharing all {artifact.levels} codes: "
                         f"{collisions['before']['collision_rate']:.2%} before resolution, "
                         f"{collisions['after']['collision_rate']:.2%} after.</p>")
    return section


def head_share(counts: np.ndarray, slots: np.ndarray) -> float:
    """Share of ``slots`` (item ids) on the 10% most interacted items (at least one; ties to the lower id)."""
    order = np.argsort(-counts, kind="stable")
    head = np.zeros(len(counts), dtype=bool)
    head[order[: max(1, len(counts) // 10)]] = True
    return float(head[slots].mean())


def popularity_section(run: RunInputs) -> Section:
    from alignrec.eval.predictions import read_predictions

    section = Section(f"Popularity of recommended items (top {POPULARITY_K})")
    if run.dataset is None:
        section.skipped = f"no dataset: {run.dataset_note}"
        return section
    counts = np.bincount(run.dataset.items, minlength=run.dataset.num_items)
    recommended: dict[str, np.ndarray] = {}
    notes = []
    for model in run.models:
        path = ModelDir(model.folder).rankings("test")
        if not path.is_file():
            notes.append(f"{model.name}: no {path.name}")
            continue
        try:
            rankings = read_predictions(path, run.dataset)
        except AlignrecError as exc:
            notes.append(f"{model.name}: {exc}")
            continue
        slots = np.array([i for items in rankings.values() for i in items[:POPULARITY_K] if i >= 0], dtype=np.int64)
        if len(slots):
            recommended[model.label] = slots
    if not recommended:
        section.skipped = "no model's rankings_test.jsonl to read" + (f" ({'; '.join(notes)})" if notes else "")
        return section
    rows = [["catalogue", f"{len(counts):,} items", f"{counts.mean():.1f}",
             f"{head_share(counts, np.repeat(np.arange(len(counts)), counts)):.1%} of interactions"]]
    for label, slots in recommended.items():
        rows.append([label, f"{len(np.unique(slots)):,} distinct of {len(slots):,} slots",
                     f"{counts[slots].mean():.1f}", f"{head_share(counts, slots):.1%} of slots"])
    section.body = _image(figures.popularity(counts, recommended, POPULARITY_K), "popularity of recommended items")
    section.body += _table(["", "items", "mean popularity", "on the 10% most popular items"], rows)
    if notes:
        section.body += f"<p class='note'>Not shown: {html.escape('; '.join(notes))}.</p>"
    return section


def lengths_section(run: RunInputs) -> Section:
    section = Section("Sequence lengths")
    if run.dataset is None:
        section.skipped = f"no dataset: {run.dataset_note}"
        return section
    lengths = run.dataset.lengths
    section.body = _image(figures.sequence_lengths(lengths), "sequence-length histogram") + _table(
        ["users", "items", "interactions", "min", "median", "mean", "max"],
        [[f"{run.dataset.num_users:,}", f"{run.dataset.num_items:,}", f"{run.dataset.num_interactions:,}",
          str(int(lengths.min())), f"{np.median(lengths):g}", f"{lengths.mean():.1f}", str(int(lengths.max()))]])
    return section


def paired_section(run: RunInputs) -> Section:
    """Every model against SASRec on the users all of them ranked, with the paired test's p-values."""
    from alignrec.config import load_config
    from alignrec.eval.paired import BASELINE as PAIRED_BASELINE
    from alignrec.eval.paired import RESAMPLES, common_users, paired_cells, paired_rows
    from alignrec.eval.subset import read_rankings

    section = Section("Against SASRec, on the same users")
    names = [m.folder.name for m in run.models]
    if run.dataset is None or PAIRED_BASELINE not in names or len(names) < 2:
        section.skipped = f"needs the dataset, {PAIRED_BASELINE} and another model"
        return section
    try:
        rankings = read_rankings(run.dataset, [m.folder for m in run.models])
    except AlignrecError as exc:
        section.skipped = str(exc)
        return section
    users = common_users(run.dataset, rankings)
    saved = RunDir(run.folder).config
    config = load_config(saved if saved.is_file() else None)  # the run's evaluation settings and seed
    rows = paired_rows(run.dataset, rankings, PAIRED_BASELINE, users, config.eval, seed=config.seed)
    section.body = _table(*paired_cells(rows, PAIRED_BASELINE)) + (
        f"<p>Change relative to {PAIRED_BASELINE}; p: two-sided paired sign-flip permutation test over users "
        f"({RESAMPLES:,} seeded resamples).</p>")
    return section


def harmonized_section(run: RunInputs) -> Section:
    section = Section("Harmonized: the LLM weight fitted on validation")
    path = RunDir(run.folder).model("harmonized").file("fusion.json")
    fit = read_json(path) if path.is_file() else {}
    if not fit.get("grid"):
        section.skipped = f"no fitted {path} (the run has no harmonized model, or its weight was given)"
        return section
    best, p = fit.get("best_weight", fit["weight"]), fit.get("p_vs_sasrec", 0.0)
    if best != fit["weight"]:
        why = (f"the best, w={best:g}, did not beat w=0 on validation {fit['select_by']} ({fit['users']:,} users, "
               f"paired p={p:.2g}, not below harmonized.fit_p={fit.get('fit_p', 1.0):g})")
    else:
        why = f"the best validation {fit['select_by']} on {fit['users']:,} users"
        if best:
            why += f", paired p={p:.2g} against w=0"
    section.body = _image(figures.fusion_weights(fit["grid"], fit["weight"], best, p),
                          "validation metrics per weight") + (
        f"<p>Kept w={fit['weight']:g}: {why}. "
        "w=0 is SASRec's list, w=1 the LLM's order over the same candidates.</p>")
    return section


SECTIONS: list[Callable[[RunInputs], Section]] = [
    accuracy_section, paired_section, harmonized_section, training_section, codes_section, popularity_section,
    lengths_section,
]

STYLE = """
body { font: 14px/1.45 system-ui, "DejaVu Sans", sans-serif; margin: 24px auto; max-width: 1080px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #e3e6eb; }
img { max-width: 100%; display: block; margin: 8px 0; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #e3e6eb; }
th { text-align: left; color: #6b7280; } td { font-variant-numeric: tabular-nums; }
.skipped, .note { color: #8a4b00; } .meta { color: #6b7280; }
"""


def _run_name(folder: Path) -> str:
    config = RunDir(folder).config
    if config.is_file():
        with open(config, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
        if isinstance(loaded, dict) and loaded.get("name"):
            return str(loaded["name"])
    return folder.name


def render(run: RunInputs, sections: list[Section]) -> str:
    name = html.escape(_run_name(run.folder))
    dataset = f"dataset {html.escape(run.dataset.name)}" if run.dataset else "no dataset"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>alignrec report: {name}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>alignrec report: {name}</h1>",
        (f"<p class='meta'>{html.escape(str(run.folder))} · {dataset} · "
         f"{', '.join(html.escape(m.name) for m in run.models) or 'no model'} · "
         f"alignrec {__version__} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>"),
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.append(f"<p class='skipped'>Skipped: {html.escape(section.skipped)}.</p>" if section.skipped
                     else section.body)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, list[Section]]:
    """Write the report (default ``RUN_DIR/report.html``); returns its path and the sections."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise AlignrecError(f"{folder}: no such run directory; give the folder of an `alignrec run`")
    run = read_inputs(folder)
    if run.dataset is None and not run.models and not RunDir(folder).tokens.is_dir():
        raise AlignrecError(f"{folder}: not a run directory (no data/, no <model>/metrics.json, no tokens/); "
                            "give the folder of an `alignrec run`")
    sections = [make(run) for make in SECTIONS]
    path = Path(out) if out is not None else RunDir(folder).report
    with atomic_open(path) as handle:
        handle.write(render(run, sections))
    return path, sections
