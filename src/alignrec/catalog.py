"""The catalog of models: a name -> how to train it, load it from a run, and fingerprint its files.

Every stage sees a model through its entry: the pipeline's loop (train if it
trains, load, rank, evaluate, write), ``alignrec train``'s choices, precompute,
the live endpoint and the report's order (the catalog's). Adding a model costs
a module with a loader and one :func:`register_model` call. Built-in entries name
their code as ``"module:function"``, imported on first use, so that reading the
catalog (the CLI's ``--help``) loads neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignrec.errors import AlignrecError
from alignrec.io import sha256_file
from alignrec.rundir import RunDir

Dataset = Any
"""A :class:`alignrec.data.dataset.SequenceDataset`: the catalog sits below the data package (the config
checks its model names against it), so it names the types it passes on instead of importing them."""
Recommender = Any
"""An :class:`alignrec.recommender.Recommender`."""


@dataclass(frozen=True)
class TrainContext:
    """What a model's trainer gets: the prepared data, the run's layout, the config, the device."""

    dataset: Dataset
    run: RunDir
    config: Any
    """The run's :class:`~alignrec.config.RunConfig`."""
    device: Any
    """A ``torch.device``."""
    needs: dict[str, Any]
    """The training settings of the models this one is built from (part of what it depends on)."""
    progress: bool = True


def _resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _nothing(config: Any) -> tuple[str, ...]:
    return ()


def _all_users(config: Any) -> int:
    return 0


@dataclass(frozen=True)
class ModelEntry:
    """How every stage handles one model. Callables may be given as ``"module:function"``."""

    name: str
    load: str | Callable[..., Recommender]
    """``load(run: RunDir, dataset, horizon)`` -> a :class:`~alignrec.recommender.Recommender`;
    ``horizon`` is the split it will be asked to predict (``test``, ``valid``), or None to serve."""
    files: str | Callable[[RunDir], list[Path]] = lambda run: []
    """The files that define the trained model; their hashes fingerprint it without loading it."""
    train: str | Callable[..., dict[str, Any]] | None = None
    """``train(context: TrainContext)`` -> figures for metrics.json; None: nothing to train."""
    sections: tuple[str, ...] = ()
    """Config sections its training depends on (a change there means another model)."""
    not_trained: tuple[str, ...] = ()
    """Settings in those sections that do not change what is trained, only when training stops (a
    larger budget extends a run) or how the model ranks: other values are not another model."""
    needs: Callable[[Any], tuple[str, ...]] = _nothing
    """Models whose trained files this one is built from, for a config (listed before it in ``models``)."""
    needs_fix: Callable[[Any], tuple[str, str]] = lambda config: ("", "")
    """For a config, why it ``needs`` those models and another fix than listing them first (or "")."""
    test_users: Callable[[Any], int] = _all_users
    """How many test users it ranks for a config: 0 = every one, else a fixed seeded subset."""
    export: str | Callable[..., list[Path]] | None = None
    """``export(run: RunDir, dataset, out: Path)`` -> the files written: the trained model in a format its
    field's own tools load (safetensors, a Hugging Face folder); None: nothing to export."""
    help: str = ""
    standalone: bool = True
    """Trainable alone by ``alignrec train`` (False: only in a run, beside the models it is built from)."""

    def loader(self) -> Callable[..., Recommender]:
        return _resolve(self.load)

    def trainer(self) -> Callable[..., dict[str, Any]] | None:
        return _resolve(self.train) if self.train is not None else None

    def exporter(self) -> Callable[..., list[Path]] | None:
        return _resolve(self.export) if self.export is not None else None

    def defining_files(self, run: RunDir) -> list[Path]:
        return list(_resolve(self.files)(run))


def _llm_needs(config: Any) -> tuple[str, ...]:
    return () if config.tokenize.features == "text" else ("sasrec",)


_CATALOG: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> None:
    """Make a model known to every stage; a later entry with the same name replaces the earlier."""
    _CATALOG[entry.name] = entry


def model_names(standalone: bool = False) -> list[str]:
    """Known models, in the catalog's order (the order of tables and reports); ``standalone``: only
    those ``alignrec train`` can train alone."""
    return [name for name, model in _CATALOG.items() if model.standalone or not standalone]


def entry(name: str) -> ModelEntry:
    if name not in _CATALOG:
        raise AlignrecError(f"model {name!r}: unknown; choose from {', '.join(model_names())}")
    return _CATALOG[name]


def models_problem(models: list[str], config: Any) -> str | None:
    """The config's rule for ``models``: known names, each after the models it is built from."""
    for index, name in enumerate(models):
        if name not in _CATALOG:
            return f"{name!r}: not a model of the catalog; choose one of {', '.join(model_names())}"
        missing = [other for other in entry(name).needs(config) if other not in models[:index]]
        if missing:
            why, fix = entry(name).needs_fix(config)
            return f"the {name} is built from {', '.join(missing)}{why}; list {', '.join(missing)} before {name}{fix}"
    return None


def load_recommender(run_dir: str | Path, name: str, dataset: Dataset, horizon: str | None = None) -> Recommender:
    """The trained model ``name`` of a run on its prepared ``dataset``, as a recommender; ``horizon``
    None serves it (every interaction is visible), a split evaluates it there."""
    return entry(name).loader()(RunDir(run_dir), dataset, horizon)


def model_fingerprint(run_dir: str | Path, name: str, dataset: Dataset) -> str:
    """Identifies a model's files and data, so a resumed job never mixes two models' lists."""
    files = entry(name).defining_files(RunDir(run_dir))
    for path in files:
        if not path.is_file():
            raise AlignrecError(f"{path}: missing; train {name} in this run first")
    parts = {"model": name, "data": dataset.fingerprint(), "files": [sha256_file(p) for p in files]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


register_model(ModelEntry(
    name="mostpop",
    load="alignrec.models.mostpop:load_recommender",
    help="the most interacted items (counted before the predicted split)",
))
register_model(ModelEntry(
    name="sasrec",
    load="alignrec.models.sasrec:load_recommender",
    files="alignrec.models.sasrec:model_files",
    train="alignrec.train.sasrec:train_stage",
    export="alignrec.models.sasrec:export_model",
    sections=("sasrec",),
    not_trained=("max_minutes", "patience"),
    help="self-attentive sequential recommender (Kang & McAuley, 2018)",
))
register_model(ModelEntry(
    name="llm",
    load="alignrec.llm.build:load_recommender",
    files="alignrec.llm.build:model_files",
    train="alignrec.train.llm:train_stage",
    export="alignrec.llm.export:export_model",
    sections=("tokenize", "llm"),
    not_trained=("max_minutes", "test_users", "beams", "decode_batch_size", "decode_shared_cache",
                 "segment_attention"),
    needs=_llm_needs,
    needs_fix=lambda config: (f" (tokenize.features={config.tokenize.features})", ", or set tokenize.features=text"),
    test_users=lambda config: config.llm.test_users,
    help="the LLM fine-tuned on the alignment tasks, decoding item codes by trie-constrained beam search",
))
register_model(ModelEntry(
    name="harmonized",
    load="alignrec.models.harmonized:load_recommender",
    files="alignrec.models.harmonized:model_files",
    train="alignrec.train.harmonized:train_stage",
    sections=("harmonized",),
    needs=lambda config: ("sasrec", "llm"),
    test_users=lambda config: config.llm.test_users,
    help="the LLM and SASRec scoring one candidate set together, by a weight fitted on validation",
    standalone=False,
))
