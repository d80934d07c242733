"""The Python API: run the pipeline, open a finished run, recommend by original ids, evaluate lists.

Everything here speaks the dataset's own ids (the strings in its files), never the
internal integer ids the stages use::

    import alignrec

    config = alignrec.load_config("default", ["sasrec.epochs=5"])
    run = alignrec.run(config, "runs/demo")
    sasrec = run.recommender("sasrec")
    for rec in sasrec.recommend(["50", "172", "181"], k=5):
        print(rec.item_id, rec.title, rec.score)

The CLI is built on the same stages, so a run made by ``alignrec run`` opens here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from alignrec.config import EvalConfig, RunConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split, eval_users
from alignrec.errors import AlignrecError
from alignrec.io import read_json
from alignrec.recommender import NO_ITEM, Recommender
from alignrec.rundir import RunDir


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its id in the dataset's files, its title (or the id) and the model's score."""

    item_id: str
    title: str
    score: float


class ItemRecommender:
    """A trained model of a run, answering in the dataset's ids (what the live endpoint answers)."""

    def __init__(self, model: Recommender, dataset: SequenceDataset) -> None:
        self.model = model
        self.dataset = dataset
        self._items = dataset.item_index()
        self._users = dataset.user_index()

    @property
    def name(self) -> str:
        return self.model.name

    def recommend(self, history: Sequence[str], k: int = 10, exclude_history: bool = True) -> list[Recommendation]:
        """The best ``k`` items after ``history`` (item ids, oldest first); its items are left out."""
        return self.recommend_many([history], k, exclude_history)[0]

    def recommend_many(
        self, histories: Sequence[Sequence[str]], k: int = 10, exclude_history: bool = True
    ) -> list[list[Recommendation]]:
        """``recommend`` for many histories at once, batched as the model likes."""
        if k < 1:
            raise AlignrecError(f"k={k}: must be at least 1")
        rows = [self._internal(history) for history in histories]
        answers: list[list[Recommendation]] = []
        size = max(self.model.batch_size, 1)
        for start in range(0, len(rows), size):
            items, scores = self.model.recommend(rows[start : start + size], k, exclude_history)
            answers.extend(self._external(row_items, row_scores) for row_items, row_scores in zip(items, scores, strict=True))
        return answers

    def recommend_user(self, user_id: str, k: int = 10) -> list[Recommendation]:
        """The best ``k`` items after a known user's whole history (what ``alignrec precompute`` caches)."""
        user = self._users.get(str(user_id))
        if user is None:
            raise AlignrecError(f"unknown user id {user_id!r} in {self.dataset.name}")
        items, scores = self.model.recommend([self.dataset.sequence(user)], k, True)
        return self._external(items[0], scores[0])

    def _internal(self, history: Sequence[str]) -> np.ndarray:
        if isinstance(history, str):
            raise AlignrecError(f"a history is a list of item ids, not the string {history!r}")
        unknown = [item for item in history if str(item) not in self._items]
        if unknown:
            raise AlignrecError(f"unknown item id {unknown[0]!r} in {self.dataset.name}"
                                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        return np.array([self._items[str(item)] for item in history], dtype=np.int64)

    def _external(self, items: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        return [Recommendation(str(self.dataset.item_ids[item]), self.dataset.title(int(item)), float(score))
                for item, score in zip(items.tolist(), scores.tolist(), strict=True) if item != NO_ITEM]


class Run:
    """A run folder made by :func:`run` or ``alignrec run``: its data, its models' metrics, its models."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = RunDir(folder)
        if not self.folder.data.is_dir():
            raise AlignrecError(f"{self.folder.root}: not a run folder (no data/; make one with alignrec.run "
                                "or `alignrec run --out DIR`)")

    @cached_property
    def dataset(self) -> SequenceDataset:
        return SequenceDataset.load(self.folder.data)

    @cached_property
    def config(self) -> RunConfig:
        """The settings the run was made with."""
        return load_config(self.folder.config if self.folder.config.is_file() else None)

    @property
    def models(self) -> list[str]:
        """The run's models with a finished test evaluation, in the run's order."""
        return [name for name in self.config.models if self.folder.model(name).metrics.is_file()]

    def metrics(self, model: str) -> dict[str, float]:
        """``model``'s test metrics (Recall@K, NDCG@K, MRR, coverage@K) as the run measured them."""
        path = self.folder.model(model).metrics
        if not path.is_file():
            raise AlignrecError(f"{path}: {model} has no test metrics in this run (its models: "
                                f"{', '.join(self.models) or 'none'})")
        return dict(read_json(path)["metrics"])

    def recommender(self, model: str) -> ItemRecommender:
        """``model`` loaded from the run's files, answering in the dataset's ids."""
        from alignrec.catalog import load_recommender, model_names  # torch and the models: only when asked

        if model not in model_names():
            raise AlignrecError(f"model {model!r}: choose one of {', '.join(model_names())}")
        return ItemRecommender(load_recommender(self.folder.root, model, self.dataset), self.dataset)

    def evaluate(
        self, rankings: Mapping[str, Sequence[str]], split: Split = "test", ks: Sequence[int] | None = None,
    ) -> dict[str, float]:
        """Score ranked lists (user id -> item ids, best first) on ``split``'s held-out items, exactly as
        the run scores its models: the same targets, cut-offs and history policy. Users left out of
        ``rankings`` are not scored; an item id the dataset lacks counts as a miss."""
        from alignrec.eval.evaluator import evaluate_rankings
        from alignrec.eval.ranking import INVALID

        users, items = self.dataset.user_index(), self.dataset.item_index()
        unknown = [user for user in rankings if str(user) not in users]
        if unknown:
            raise AlignrecError(f"unknown user id {unknown[0]!r} in {self.dataset.name}")
        internal = {users[str(user)]: [items.get(str(item), INVALID) for item in ranked]
                    for user, ranked in rankings.items()}
        chosen = np.array(sorted(internal), dtype=np.int64)
        too_short = chosen[~np.isin(chosen, eval_users(self.dataset))]
        if len(too_short):
            raise AlignrecError(f"user {self.dataset.user_ids[too_short[0]]!r} has fewer than 3 interactions: "
                                "no held-out item to score")
        settings = self.config.eval if ks is None else EvalConfig(**{**self.config.eval.model_dump(), "ks": list(ks)})
        return evaluate_rankings(self.dataset, internal, split, "lists", settings, users=chosen).metrics


def run(config: RunConfig | str | Path | None = None, out: str | Path | None = None,
        overrides: Sequence[str] = (), progress: bool = True) -> Run:
    """Run (or resume) the whole pipeline into ``out`` (default ``runs/<name>``, as ``alignrec run``)
    and open the result.

    ``config``: a :class:`RunConfig`, a preset name (``default``, ``ml-1m``...) or a YAML path;
    ``None`` is the built-in defaults. ``overrides`` are ``key=value`` strings as after ``--set``.
    """
    from alignrec.pipeline import run_pipeline  # torch and the models: only when a run is asked for

    if not isinstance(config, RunConfig):
        config = load_config(config, list(overrides))
    elif overrides:
        raise AlignrecError("overrides go with a preset name or a YAML path; a RunConfig is changed with "
                            "model_copy(update=...) or built with load_config(source, overrides)")
    out = Path("runs") / config.name if out is None else Path(out)
    run_pipeline(config, out, progress)
    return Run(out)


def load_run(folder: str | Path) -> Run:
    """Open a finished (or partly finished) run folder."""
    return Run(folder)
