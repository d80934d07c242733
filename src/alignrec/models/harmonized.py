"""The harmonized recommender: the LLM and SASRec rank one set of candidates together.

Each user's candidates are SASRec's top ``harmonized.candidates`` items and the LLM's
beams (``fusion``), or SASRec's alone with the LLM's search kept to them (``cascade``).
Every candidate gets both models' log-probabilities: SASRec's full softmax over the
catalog, and the LLM's summed code log-probabilities, exact for the candidates its
beams pruned (one short forward from the prompt's cache, not a second prefill). The
list is ordered by the weighted sum ``(1 - w) log p_sasrec + w log p_llm``, a
geometric mixture of the two distributions, with ``w`` fitted on validation users
(``alignrec.train.harmonized``). Candidates are laid out SASRec's first, in SASRec's
order, and ties keep that order, so ``w = 0`` gives exactly SASRec's list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alignrec.config import HarmonizedConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import Split
from alignrec.errors import AlignrecError
from alignrec.io import read_json
from alignrec.llm.build import load_recommender as load_llm
from alignrec.llm.build import model_files as llm_files
from alignrec.llm.recommender import LLMRecommender
from alignrec.models.sasrec import SASRec, left_pad, load
from alignrec.models.sasrec import model_files as sasrec_files
from alignrec.recommender import NO_ITEM, top_k
from alignrec.rundir import RunDir

FUSION = "fusion.json"
"""The harmonized folder's trained part: the fitted weight and the validation grid it came from."""
FLOOR = -1e4
"""A log-probability for "this model does not rank it" (a cascade candidate the LLM's search did not
reach): finite, so that weight 0 multiplies it away, and far below any real one."""


@dataclass
class Candidates:
    """Each user's candidates ([B, C], ``NO_ITEM`` pads) and both models' log-probabilities of them."""

    items: np.ndarray
    sasrec: np.ndarray
    llm: np.ndarray


def fuse(candidates: Candidates, weight: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` candidates per user by ``(1 - weight) sasrec + weight llm``, and that score.

    A stable sort: ties keep the candidates' order (SASRec's first), so weight 0 is SASRec's list.
    """
    score = (1 - weight) * np.maximum(candidates.sasrec, FLOOR) + weight * np.maximum(candidates.llm, FLOOR)
    score = np.where(candidates.items == NO_ITEM, -np.inf, score).astype(np.float32)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    items = np.take_along_axis(candidates.items, order, axis=1)
    values = np.take_along_axis(score, order, axis=1)
    if items.shape[1] < k:  # fewer candidates than asked
        pad = k - items.shape[1]
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=NO_ITEM)
        values = np.pad(values, ((0, 0), (0, pad)), constant_values=-np.inf)
    items = np.where(np.isfinite(values), items, NO_ITEM)
    return items, values


class HarmonizedRecommender:
    name = "harmonized"

    def __init__(self, sasrec: SASRec, llm: LLMRecommender, settings: HarmonizedConfig, weight: float) -> None:
        self.sasrec = sasrec.eval()
        self.llm = llm
        self.settings = settings
        self.weight = weight
        self.batch_size = llm.batch_size
        self.device = sasrec.item_embedding.weight.device

    def candidates(self, histories: list[np.ndarray], k: int, exclude_history: bool = True) -> Candidates:
        """Both models' views of each user's candidates for a list of ``k`` (at least ``k`` from SASRec)."""
        with torch.no_grad():
            scores = self.sasrec.score_last(
                left_pad(histories, self.sasrec.max_len, trim=True).to(self.device)).cpu().float()
        ids, raw = top_k(scores, histories, max(self.settings.candidates, k), exclude_history)
        log_norm = scores.logsumexp(dim=1).numpy()[:, None]
        sasrec = raw - log_norm
        if self.settings.mode == "cascade":
            beams, beam_scores, _ = self.llm.search(histories, min(k, ids.shape[1]), exclude_history,
                                                    only=[row[row != NO_ITEM] for row in ids])
            llm = np.full(ids.shape, -np.inf, dtype=np.float32)
            for row in range(len(ids)):
                reached = dict(zip(beams[row].tolist(), beam_scores[row].tolist(), strict=True))
                llm[row] = [reached.get(item, -np.inf) for item in ids[row].tolist()]
            return Candidates(ids, sasrec, llm)
        beams, beam_scores, exact = self.llm.search(histories, k, exclude_history, candidates=ids)
        assert exact is not None
        # The beams SASRec's top did not hold join after it, with SASRec's log-probability of them.
        held = np.stack([np.isin(found, top) for found, top in zip(beams, ids, strict=True)])
        extra = np.where(held, NO_ITEM, beams)
        extra_sasrec = np.where(extra == NO_ITEM, -np.inf,
                                np.take_along_axis(scores.numpy(), np.maximum(extra, 0), axis=1) - log_norm)
        extra_llm = np.where(extra == NO_ITEM, -np.inf, beam_scores)
        return Candidates(np.concatenate([ids, extra], axis=1),
                          np.concatenate([sasrec, extra_sasrec], axis=1).astype(np.float32),
                          np.concatenate([exact, extra_llm], axis=1).astype(np.float32))

    def recommend(
        self, histories: list[np.ndarray], k: int, exclude_history: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        return fuse(self.candidates(histories, k, exclude_history), self.weight, k)


def model_files(run: RunDir) -> list[Path]:
    """The files that define it: the fitted weight and both models it ranks with."""
    return [run.model("harmonized").file(FUSION), *sasrec_files(run), *llm_files(run)]


def load_recommender(run: RunDir, dataset: SequenceDataset, horizon: Split | None = None) -> HarmonizedRecommender:
    """The catalog's loader: the run's SASRec and LLM with the weight fitted in ``harmonized/``."""
    path = run.model("harmonized").file(FUSION)
    if not path.is_file():
        raise AlignrecError(f"{path}: missing; fit the harmonized model in this run first (`alignrec run`)")
    config = load_config(run.config)
    llm = load_llm(run, dataset, horizon)
    sasrec = load(run.model("sasrec"), dataset).to(next(llm.model.parameters()).device)
    return HarmonizedRecommender(sasrec, llm, config.harmonized, float(read_json(path)["weight"]))


def best_on_validation(run: RunDir) -> str:
    """The harmonized model where its fit kept an LLM weight above 0 (it beat SASRec, weight 0, on
    the validation users it was fitted on, by a paired test), else SASRec where it was trained, else MostPop."""
    path = run.model("harmonized").file(FUSION)
    fit = read_json(path) if path.is_file() else {}
    if fit.get("fitted") and float(fit["weight"]) > 0:
        return "harmonized"
    return "sasrec" if all(path.is_file() for path in sasrec_files(run)) else "mostpop"
