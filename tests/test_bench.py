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
