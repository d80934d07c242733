"""The harmonized recommender: weight 0 is SASRec's list exactly, weight 1 the LLM's order over the
candidates, every candidate scored by both models (``alignrec.models.harmonized``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignrec.config import HarmonizedConfig, SASRecConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.split import eval_users, history
from alignrec.decode.beam import search_and_score
from alignrec.llm.build import build_llm
from alignrec.models.harmonized import Candidates, HarmonizedRecommender, fuse
from alignrec.models.sasrec import SASRec, SASRecRecommender
from alignrec.recommender import NO_ITEM
from tests.llm.conftest import tiny_artifact, tiny_llm_config


def test_fuse_orders_by_the_weighted_sum_and_ties_keep_the_candidates_order() -> None:
    candidates = Candidates(items=np.array([[4, 7, 2, NO_ITEM]]),
                            sasrec=np.array([[-1.0, -2.0, -2.0, -np.inf]]),
                            llm=np.array([[-9.0, -1.0, -3.0, -np.inf]]))
    assert fuse(candidates, 0.0, 3)[0].tolist() == [[4, 7, 2]]  # 7 and 2 tie: the candidates' order
    assert fuse(candidates, 1.0, 3)[0].tolist() == [[7, 2, 4]]
    items, scores = fuse(candidates, 0.5, 5)  # -5, -1.5, -2.5: wider than the candidates -> NO_ITEM pads
    assert items.tolist() == [[7, 2, 4, NO_ITEM, NO_ITEM]]
    np.testing.assert_allclose(scores[0, :3], [-1.5, -2.5, -5.0])
    assert np.isneginf(scores[0, 3:]).all()


def test_a_model_that_does_not_rank_a_candidate_puts_it_last_unless_its_weight_is_zero() -> None:
    candidates = Candidates(items=np.array([[1, 2]]), sasrec=np.array([[-1.0, -3.0]]),
                            llm=np.array([[-np.inf, -20.0]]))  # the cascade's LLM never reached item 1
    assert fuse(candidates, 0.0, 2)[0].tolist() == [[1, 2]]
    assert fuse(candidates, 0.05, 2)[0].tolist() == [[2, 1]]


@pytest.fixture(scope="module")
def models() -> tuple[SequenceDataset, SASRec, object]:
    from tests.conftest import cyclic_dataset

    dataset = cyclic_dataset(num_users=40, num_items=20)
    torch.manual_seed(0)
    sasrec = SASRec(dataset.num_items, SASRecConfig(hidden=16, layers=1, heads=1, dropout=0.0, max_len=10)).eval()
    llm = build_llm(tiny_llm_config(beams=6), tiny_artifact(dataset), dataset, seed=0).recommender
    return dataset, sasrec, llm


def histories_of(dataset: SequenceDataset) -> list[np.ndarray]:
    return [history(dataset, int(u), "test") for u in eval_users(dataset)[:12]]


@pytest.mark.parametrize("mode", ["fusion", "cascade"])
@pytest.mark.parametrize("k", [3, 8])
def test_weight_zero_gives_sasrecs_lists_exactly(models, mode: str, k: int) -> None:
    dataset, sasrec, llm = models
    histories = histories_of(dataset)
    harmonized = HarmonizedRecommender(sasrec, llm, HarmonizedConfig(mode=mode, candidates=5), weight=0.0)
    expected, _ = SASRecRecommender(sasrec).recommend(histories, k)
    assert np.array_equal(harmonized.recommend(histories, k)[0], expected)


def test_weight_one_ranks_the_candidates_by_the_llms_exact_log_probability(models) -> None:
    dataset, sasrec, llm = models
    histories = histories_of(dataset)
    harmonized = HarmonizedRecommender(sasrec, llm, HarmonizedConfig(candidates=5), weight=1.0)
    found = harmonized.candidates(histories, 4)
    items, scores = harmonized.recommend(histories, 4)
    # Every candidate's LLM score is its exact log-probability after the same prompt.
    _, _, exact = search_and_score(llm.model, llm.prompts(histories), llm.trie, beams=6, k=1, pad_token_id=llm.pad_id,
                                   candidates=found.items, softmax=llm.softmax)
    np.testing.assert_allclose(found.llm, exact, atol=1e-4)
    own_items, own_scores = llm.recommend(histories, 4)
    assert (scores >= own_scores - 1e-4).all()  # the LLM's beams are candidates: never a worse list
    for row in range(len(histories)):
        assert set(items[row]) >= {item for item, score in zip(own_items[row], own_scores[row], strict=True)
                                   if score > scores[row, -1] + 1e-4}
        assert not set(items[row]) & set(histories[row].tolist())  # the history stays out
        assert (np.diff(scores[row]) <= 1e-6).all()


def test_the_cascade_keeps_to_sasrecs_candidates(models) -> None:
    dataset, sasrec, llm = models
    histories = histories_of(dataset)
    settings = HarmonizedConfig(mode="cascade", candidates=5)
    top, _ = SASRecRecommender(sasrec).recommend(histories, 5)
    items, _ = HarmonizedRecommender(sasrec, llm, settings, weight=1.0).recommend(histories, 4)
    for row in range(len(histories)):
        assert set(items[row].tolist()) <= set(top[row].tolist())


def test_the_best_model_on_validation_is_harmonized_only_where_its_fit_beat_sasrec(tmp_path) -> None:
    from alignrec.io import write_json
    from alignrec.models.harmonized import FUSION, best_on_validation
    from alignrec.models.sasrec import BEST
    from alignrec.rundir import RunDir

    run = RunDir(tmp_path)
    assert best_on_validation(run) == "mostpop"  # nothing trained
    run.model("sasrec").path.mkdir()
    run.model("sasrec").file(BEST).write_bytes(b"weights")
    assert best_on_validation(run) == "sasrec"
    run.model("harmonized").path.mkdir()
    write_json(run.model("harmonized").file(FUSION), {"weight": 0.0, "fitted": True})
    assert best_on_validation(run) == "sasrec"  # weight 0 is SASRec: no better on validation
    write_json(run.model("harmonized").file(FUSION), {"weight": 0.3, "fitted": False})
    assert best_on_validation(run) == "sasrec"  # a weight given, not fitted: never compared
    write_json(run.model("harmonized").file(FUSION), {"weight": 0.3, "fitted": True})
    assert best_on_validation(run) == "harmonized"
