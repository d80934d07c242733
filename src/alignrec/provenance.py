"""Which code made a result: part of every stage's fingerprint, and recorded with every run.

A stage is skipped on a rerun only when its data, settings and seed match *and*
it was made by the same code: the alignrec version (bumped whenever a change
alters results, see the README) and the libraries whose arithmetic or defaults
change results (:data:`RESULT_LIBRARIES`). Anything else that a run records
(the git commit, Python, the CPU) tells a reader where a figure came from but
does not invalidate it.
"""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import alignrec

RESULT_LIBRARIES = ("torch", "transformers", "peft")
"""Libraries whose version is part of every stage's fingerprint."""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@cache
def code_versions() -> dict[str, str | None]:
    """alignrec's version and those of :data:`RESULT_LIBRARIES` (None where one is not installed)."""
    return {"alignrec": alignrec.__version__, **{name: _version(name) for name in RESULT_LIBRARIES}}


@cache
def git_commit() -> str | None:
    """The commit of the checkout alignrec runs from (``+dirty`` with uncommitted changes), else None."""
    source = Path(alignrec.__file__).resolve().parent
    try:
        top = subprocess.run(["git", "-C", str(source), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        if (Path(top) / "src" / "alignrec").resolve() != source:
            return None  # some other repository that happens to contain an installed alignrec
        commit = subprocess.run(["git", "-C", top, "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", top, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """What a run records about the code and machine that made it."""
    import torch

    return {
        **code_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
