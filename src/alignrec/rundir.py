"""A run directory as code: every path inside it, and the one rule that decides "done earlier".

::

    RUN/
      config.yaml       the resolved config
      data/             the prepared dataset (+ stage.json)
      tokens/           item codes for the LLM (+ stage.json)
      <model>/          one folder per model: stage.json, metrics.json, rankings_test.jsonl,
                        and the model's own files, named by its module (SASRec's checkpoint.pt ...)
      summary.json, comparison.md, report.html, store.sqlite

The rule: a stage writes ``stage.json`` with the settings it is made with (data,
settings, seed and code versions, ``alignrec.provenance``) and marks it done when
its outputs are complete. A rerun with equal settings skips a done stage and
resumes an unfinished one. With other settings, a stage that is cheap to make
again (data, tokens, an evaluation) is made again; one that holds a training run
is refused with the fix, never overwritten: ``alignrec run`` and ``alignrec
train`` alike.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from alignrec.errors import AlignrecError
from alignrec.io import read_json, write_json

RECORD = "stage.json"
METRICS = "metrics.json"
console = Console(stderr=True)


@dataclass(frozen=True)
class ModelDir:
    """One model's folder: what every model writes there."""

    path: Path

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    def rankings(self, split: str) -> Path:
        return self.path / f"rankings_{split}.jsonl"

    @property
    def record(self) -> Path:
        return self.path / RECORD

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files of the model's training (``tracking: tensorboard``)."""
        return self.path / "tensorboard"

    def file(self, name: str) -> Path:
        """A file the model's own module names (its checkpoint, its embeddings)."""
        return self.path / name


class RunDir:
    """The layout of ``alignrec run --out RUN``.

    ``alignrec train MODEL --out DIR`` trains one model into DIR itself (``single``), from a
    prepared dataset and (the LLM) item codes given by path.
    """

    def __init__(self, root: str | Path, data: str | Path | None = None, tokens: str | Path | None = None,
                 single: str | None = None) -> None:
        self.root = Path(root)
        self._data = Path(data) if data is not None else None
        self._tokens = Path(tokens) if tokens is not None else None
        self.single = single

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        return self._data if self._data is not None else self.root / "data"

    @property
    def tokens(self) -> Path:
        return self._tokens if self._tokens is not None else self.root / "tokens"

    @property
    def tokens_given(self) -> bool:
        """Item codes made elsewhere (``--tokens``): used as they are, never made again here."""
        return self._tokens is not None

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.md"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def store(self) -> Path:
        return self.root / "store.sqlite"

    def model(self, name: str) -> ModelDir:
        return ModelDir(self.root if name == self.single else self.root / name)


Verdict = Literal["done", "resume", "new"]


def _change(recorded: dict[str, Any], settings: dict[str, Any]) -> str:
    """What differs between two records: the top-level settings named, or the code versions."""
    if {**recorded, "code": settings.get("code")} == settings:
        old, new = recorded.get("code") or {}, settings.get("code") or {}
        if not old:
            return "by an alignrec that recorded no versions"
        changed = [f"{name} {old.get(name)} -> {new.get(name)}" for name in new if old.get(name) != new.get(name)]
        return f"by other code ({', '.join(changed)})"
    keys = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k) and k != "code")
    return "with other " + ", ".join(_differing(recorded, settings, keys))


def _differing(recorded: dict[str, Any], settings: dict[str, Any], keys: list[str]) -> list[str]:
    """Dotted names of the settings that differ (``llm.lr``), a level deep where the values are sections."""
    names = []
    for key in keys:
        old, new = recorded.get(key), settings.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            names.extend(f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
        else:
            names.append(key)
    return names or ["settings"]


OnStale = Literal["refuse", "clear", "overwrite"]
"""What a stage does with outputs made with other settings: refuse them with the fix (a training run),
clear its folder (data, tokens), or write over them (an evaluation, whose files are all rewritten)."""


def claim(
    folder: Path, settings: dict[str, Any], what: str, on_stale: OnStale, started: bool = False,
    record: str = RECORD,
) -> Verdict:
    """The rule, for the stage whose outputs live in ``folder`` and whose record is ``folder/record``.

    ``done``: made earlier with these settings, skip it. ``resume``: begun with these settings, go
    on. ``new``: nothing usable there; the settings are recorded as begun. ``started``: outputs
    exist without a record (made by an alignrec that kept none), which counts as other settings.
    """
    path = folder / record
    recorded = read_json(path) if path.is_file() else None
    if recorded is not None and recorded.get("settings") == settings:
        return "done" if recorded.get("done") else "resume"
    if recorded is not None or started:
        why = "with no record of its settings" if recorded is None else _change(recorded.get("settings") or {}, settings)
        if on_stale == "refuse":
            raise AlignrecError(f"{folder}: {what} made {why}; use a new --out, or delete {folder} to make it again")
        console.print(f"[yellow]{what}[/] in {folder}: made {why}; making it again", highlight=False)
        if on_stale == "clear":
            shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, {"settings": settings, "done": False})
    return "new"


def finish(folder: Path, settings: dict[str, Any], record: str = RECORD) -> None:
    """Mark the stage in ``folder`` done: a rerun with these settings skips it."""
    write_json(folder / record, {"settings": settings, "done": True})
