"""Experiment tracking (``tracking: tensorboard``): the event files hold the losses and validation metrics
the training logs (``train_log.csv``) hold, for SASRec's loop and for the LLM's Trainer."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from alignrec.cli import main
from alignrec.config import SASRecConfig
from alignrec.train.sasrec import train_sasrec
from tests.conftest import cyclic_dataset


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files under ``folder``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return found


def log_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_sasrec_writes_each_epoch_s_loss_and_validation(tmp_path) -> None:
    config = SASRecConfig(hidden=16, layers=1, heads=1, max_len=10, epochs=3, eval_every=1, batch_size=32)
    train_sasrec(cyclic_dataset(60, 12), config, tmp_path / "sasrec", seed=0, progress=False,
                 tensorboard=tmp_path / "sasrec" / "tensorboard")
    found, rows = scalars(tmp_path / "sasrec" / "tensorboard"), log_rows(tmp_path / "sasrec" / "train_log.csv")
    assert [step for step, _ in found["train/loss"]] == [1, 2, 3]
    assert [v for _, v in found["train/loss"]] == pytest.approx([float(r["loss"]) for r in rows], rel=1e-6)
    assert [v for _, v in found["valid/ndcg@10"]] == pytest.approx([float(r["valid_ndcg@10"]) for r in rows], rel=1e-6)


def test_off_by_default_and_on_from_the_config(lcrec_dir, tmp_path, monkeypatch) -> None:
    from tests.train.test_harmonized import TINY_RUN

    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    args = ["run", "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
            "--set", "models=[sasrec, llm]", *TINY_RUN, "--set", "llm.eval_steps=2"]
    assert main([*args, "--out", str(tmp_path / "off"), "--set", "models=[sasrec]"]) == 0
    assert not (tmp_path / "off" / "sasrec" / "tensorboard").exists()
    assert main([*args, "--out", str(tmp_path / "on"), "--set", "tracking=tensorboard"]) == 0
    assert scalars(tmp_path / "on" / "sasrec" / "tensorboard")["train/loss"]
    found, rows = scalars(tmp_path / "on" / "llm" / "tensorboard"), log_rows(tmp_path / "on" / "llm" / "train_log.csv")
    logged = [r for r in rows if r["loss"]]  # the Trainer's logging steps (step 0 holds validation only)
    assert [step for step, _ in found["train/loss"]] == [int(r["step"]) for r in logged] == [2, 4]
    assert [v for _, v in found["train/loss"]] == pytest.approx([float(r["loss"]) for r in logged], rel=1e-5)
    assert {"train/learning_rate", "train/loss_sequential", "train/tokens_per_s"} <= set(found)
    assert [step for step, _ in found["valid/recall@10"]] == [2, 4]
