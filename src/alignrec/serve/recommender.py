"""The one interface every served model implements, and the registry that loads them from a run.

Precompute, the Ray engine and the live endpoint see a model only as a
:class:`TopKRecommender`: a batch of histories in, the best ``k`` internal item
ids and their scores out. A new model (the LLM) joins by registering a loader
under its name; nothing else in ``alignrec.serve`` changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from alignrec.config import SASRecConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.device import resolve_device
from alignrec.errors import AlignrecError
from alignrec.eval.ranking import top_n_scored
from alignrec.io import sha256_file
from alignrec.models.sasrec import SASRec, left_pad
from alignrec.train.sasrec import BEST, CHECKPOINT

NO_ITEM = -1
"""Pads a row of item ids when fewer than ``k`` items are left to recommend."""


class TopKRecommender(Protocol):
    name: str

    def recommend(self, histories: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids [B, k] (NO_ITEM pads when fewer exist), scores [B, k], history items excluded.

        Rows are best first; a padded position's score is ``-inf``.
        """
        ...


def _padded(items: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Widen [B, n<=k] results to [B, k]; masked (-inf) entries become NO_ITEM."""
    out_items = np.full((items.shape[0], k), NO_ITEM, dtype=np.int64)
    out_scores = np.full((items.shape[0], k), -np.inf, dtype=np.float32)
    out_items[:, : items.shape[1]] = items
    out_scores[:, : items.shape[1]] = scores
    out_items[~np.isfinite(out_scores)] = NO_ITEM
    return out_items, out_scores


class PopularityRecommender:
    """Most interacted items over the whole dataset: the fallback and the ``mostpop`` model.

    Serving sees every interaction, so unlike the evaluated MostPop nothing is held
    out. Score = interaction count; ties go to the lower item id.
    """

    name = "mostpop"

    def __init__(self, dataset: SequenceDataset) -> None:
        self.counts = np.bincount(dataset.items, minlength=dataset.num_items).astype(np.float32)
        self.order = np.lexsort((np.arange(dataset.num_items), -self.counts))

    def recommend(self, histories: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        items = np.full((len(histories), k), NO_ITEM, dtype=np.int64)
        scores = np.full((len(histories), k), -np.inf, dtype=np.float32)
        for row, history in enumerate(histories):
            # The best k + len(history) always hold k items the user does not have.
            head = self.order[: k + len(history)]
            best = head[~np.isin(head, history)][:k]
            items[row, : len(best)] = best
            scores[row, : len(best)] = self.counts[best]
        return items, scores


class SASRecRecommender:
    """A trained SASRec: next-item scores for the whole history, best ``k`` unseen items."""

    name = "sasrec"

    def __init__(self, model: SASRec) -> None:
        self.model = model.eval()

    def recommend(self, histories: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            scores = self.model.score_last(left_pad(histories, self.model.max_len, trim=True))
        items, values = top_n_scored(scores, histories, k)
        return _padded(items, values, k)


def _sasrec_folder(run_dir: Path) -> Path:
    return run_dir / "sasrec"


def _load_sasrec(run_dir: Path, dataset: SequenceDataset) -> SASRecRecommender:
    folder = _sasrec_folder(run_dir)
    best, checkpoint = folder / BEST, folder / CHECKPOINT
    for path in (best, checkpoint):
        if not path.is_file():
            raise AlignrecError(
                f"{path}: missing; train SASRec in this run first (`alignrec run --out {run_dir}`)"
            )
    # checkpoint.pt holds the architecture and the data fingerprint the weights were trained on.
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if saved.get("data") != dataset.fingerprint():
        raise AlignrecError(
            f"{checkpoint}: trained on other data than {run_dir / 'data'}; serve the run it was trained in"
        )
    model = SASRec(dataset.num_items, SASRecConfig(**saved["config"]))
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True))
    return SASRecRecommender(model)


def _load_llm(run_dir: Path, dataset: SequenceDataset) -> TopKRecommender:
    """The fine-tuned LLM of an ``alignrec run`` directory (``llm/``, ``tokens/``, ``config.yaml``)."""
    from alignrec.config import load_config
    from alignrec.llm.finetune import load_finetuned
    from alignrec.tokenize.artifacts import load_artifact

    config = load_config(run_dir / "config.yaml")
    return load_finetuned(run_dir / "llm", load_artifact(run_dir / "tokens"), config.llm, config.seed, dataset,
                          resolve_device(config.device))


def _llm_files(run_dir: Path) -> list[Path]:
    return [run_dir / "llm" / "model" / "adapter_model.safetensors", run_dir / "tokens" / "codes.json"]


@dataclass(frozen=True)
class RecommenderEntry:
    """How to load one kind of model from a run directory."""

    load: Callable[[Path, SequenceDataset], TopKRecommender]
    files: Callable[[Path], list[Path]]
    """The files that define the trained model; their hashes fingerprint it without loading it."""


_REGISTRY: dict[str, RecommenderEntry] = {
    "mostpop": RecommenderEntry(lambda run_dir, dataset: PopularityRecommender(dataset), lambda run_dir: []),
    "sasrec": RecommenderEntry(_load_sasrec, lambda run_dir: [_sasrec_folder(run_dir) / BEST]),
    "llm": RecommenderEntry(_load_llm, _llm_files),
}


def register_recommender(name: str, entry: RecommenderEntry) -> None:
    """Make ``name`` servable (``--model name``); a later registration replaces an earlier one."""
    _REGISTRY[name] = entry


def recommender_names() -> list[str]:
    return sorted(_REGISTRY)


def _entry(model: str) -> RecommenderEntry:
    if model not in _REGISTRY:
        raise AlignrecError(f"model {model!r}: not servable; choose from {', '.join(recommender_names())}")
    return _REGISTRY[model]


def load_run_dataset(run_dir: str | Path) -> SequenceDataset:
    """The prepared dataset of a run directory (``RUN/data``)."""
    return SequenceDataset.load(Path(run_dir) / "data")


def load_recommender(
    run_dir: str | Path, model: str, dataset: SequenceDataset | None = None
) -> TopKRecommender:
    """The trained ``model`` of the run in ``run_dir`` (its dataset is loaded unless given)."""
    run_dir = Path(run_dir)
    entry = _entry(model)
    return entry.load(run_dir, dataset if dataset is not None else load_run_dataset(run_dir))


def model_fingerprint(run_dir: str | Path, model: str, dataset: SequenceDataset) -> str:
    """Identifies a model's weights and data, so a resumed job never mixes two models' lists."""
    run_dir = Path(run_dir)
    files = _entry(model).files(run_dir)
    for path in files:
        if not path.is_file():
            raise AlignrecError(f"{path}: missing; train {model} in this run first")
    parts = {"model": model, "data": dataset.fingerprint(), "files": [sha256_file(p) for p in files]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
