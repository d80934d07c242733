"""Where alignrec keeps downloaded wheels, prepared datasets and model caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$ALIGNREC_CACHE``, else ``~/.cache/alignrec``."""
    root = os.environ.get("ALIGNREC_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "alignrec"
    path.mkdir(parents=True, exist_ok=True)
    return path
