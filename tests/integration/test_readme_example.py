"""The README's Python example, run as written on MovieLens-100k in a fresh folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_python_example_runs_as_written(tmp_path) -> None:
    example = README.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()  # the run's own table comes first
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("['mostpop', 'sasrec'] 0.")):]
    recs = lines[1:6]
    assert len(recs) == 5 and not any(r.split()[0] in {"50", "172", "181"} for r in recs)
    assert lines[6].startswith("[Recommendation(item_id=") and "recall@10" in lines[7]
    assert (tmp_path / "runs" / "quickstart" / "sasrec" / "metrics.json").is_file()
