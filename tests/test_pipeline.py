"""The pipeline's multi-process rule (``pipeline.wait_for_claim``): torchrun's other ranks start training
only once rank 0 has claimed the folder for the same settings."""

from __future__ import annotations

import threading
import time

import pytest

from alignrec.errors import AlignrecError
from alignrec.pipeline import wait_for_claim
from alignrec.rundir import claim

SETTINGS = {"llm": {"lr": 0.001}, "seed": 42}


def test_another_rank_waits_for_rank_0_s_claim(tmp_path) -> None:
    folder = tmp_path / "llm"
    claimed_at: list[float] = []

    def rank_0() -> None:
        time.sleep(0.3)
        claimed_at.append(time.monotonic())  # before the record is written: the wait cannot end earlier
        claim(folder, SETTINGS, "llm's training", "refuse")

    thread = threading.Thread(target=rank_0)
    thread.start()
    wait_for_claim(folder, SETTINGS, timeout_s=10)
    returned = time.monotonic()
    thread.join()
    assert claimed_at and returned >= claimed_at[0]


def test_a_record_of_other_settings_is_not_a_claim(tmp_path) -> None:
    folder = tmp_path / "llm"
    claim(folder, {**SETTINGS, "seed": 1}, "llm's training", "refuse")
    with pytest.raises(AlignrecError, match="rank 0 did not claim it for training within 0 s; run the job again"):
        wait_for_claim(folder, SETTINGS, timeout_s=0.2)
