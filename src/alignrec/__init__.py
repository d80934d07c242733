"""alignrec: an LLM recommender aligned with a collaborative sequential model.

The Python API (see ``alignrec.api`` and the README)::

    import alignrec
    run = alignrec.run("default", "runs/default")           # or alignrec.load_run("runs/default")
    run.recommender("sasrec").recommend(["50", "172"], k=10)  # original item ids in, titles out
    run.evaluate({"196": ["50", "100", "181"]})               # your own lists, scored like the run's

Its names load on first use, so ``import alignrec`` stays light (no torch until a model is needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"
"""Bumped whenever a change alters results (see the README): it is part of every stage's
fingerprint, so a rerun recomputes what older code made instead of reusing it."""

_API = {
    "load_config": "alignrec.config",
    "RunConfig": "alignrec.config",
    "run": "alignrec.api",
    "load_run": "alignrec.api",
    "Run": "alignrec.api",
    "ItemRecommender": "alignrec.api",
    "Recommendation": "alignrec.api",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'alignrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
