"""Benchmarks that cannot rot: each script under bench/ with a smoke run here runs in seconds on a tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_decode_benchmark_runs_and_both_searches_agree() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "decode.py"), "--users", "4", "--items", "50", "--levels", "2",
         "--codebook-size", "8", "--history", "3", "--beams", "4", "--k", "4", "--batch-size", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "identical top-4 lists: 100.0% of users (4/4)" in done.stdout
    assert "invalid items returned: ours 0.0%, generate 0.0%" in done.stdout


def test_the_llm_benchmarks_run_on_a_tiny_run(lcrec_dir, tmp_path, monkeypatch) -> None:
    from alignrec.cli import main
    from tests.train.test_harmonized import TINY_RUN

    monkeypatch.setenv("ALIGNREC_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), "--set", f"data.path={lcrec_dir}", "--set", "data.format=lcrec",
                 "--set", "models=[mostpop, sasrec, llm]", *TINY_RUN]) == 0
    done = subprocess.run([sys.executable, str(BENCH / "code_prior.py"), "--run", str(run), "--users", "8",
                           "--strengths", "0", "4", "--k", "5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| llm, prior")]
    assert [row[0] for row in rows] == ["| llm, prior 0", "| llm, prior 4"]
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows)

    # the same run twice: the same lists, so no change and p = 1
    done = subprocess.run([sys.executable, str(BENCH / "valid_compare.py"), "--runs", str(run), str(run),
                           "--users", "8", "--k", "5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith(f"| {run}")]
    assert len(rows) == 2 and rows[0][1:4] == rows[1][1:4] and rows[1][4:6] == ["+0.0%", "1.0000"]
