"""``alignrec export``: a finished run's trained models in the formats their fields' tools load.

SASRec as safetensors with its config (``alignrec.models.sasrec``); the fine-tuned LLM
merged into a standard Hugging Face folder with its tokenizer, item codes and model
card (``alignrec.llm.export``). The export is written beside ``out`` and moved into
place when complete, so an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from alignrec.catalog import entry
from alignrec.config import load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.rundir import RunDir


def exportable(run: RunDir) -> list[str]:
    """The run's models that have an export and a finished evaluation (so trained files)."""
    config = load_config(run.config)
    return [name for name in config.models if entry(name).export is not None and run.model(name).metrics.is_file()]


def export_run(run_dir: str | Path, out: str | Path, models: list[str] | None = None) -> dict[str, list[Path]]:
    """Export ``models`` (default: every exportable one) of the run to ``out/<model>/``; returns the files."""
    run, out = RunDir(run_dir), Path(out)
    if not run.config.is_file() or not run.data.is_dir():
        raise AlignrecError(f"{run.root}: not a run folder (no config.yaml and data/); give the --out of `alignrec run`")
    if out.exists() and any(out.iterdir()):
        raise AlignrecError(f"--out {out}: exists and is not empty; give a new folder")
    available = exportable(run)
    chosen = models or available
    for name in chosen:
        if name not in available:
            raise AlignrecError(f"--models {name}: not exportable from {run.root} (exportable: "
                                f"{', '.join(available) or 'none'}; a model exports once trained and evaluated)")
    if not chosen:
        raise AlignrecError(f"{run.root}: no trained model to export (exportable: sasrec, llm)")
    dataset = SequenceDataset.load(run.data)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written = {}
        for name in chosen:
            exporter = entry(name).exporter()
            assert exporter is not None
            written[name] = [out / path.relative_to(staging) for path in exporter(run, dataset, staging / name)]
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written
