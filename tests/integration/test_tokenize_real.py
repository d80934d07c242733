"""The tokenizer with the real packaged models (MiniLM, SmolLM2) on real MovieLens-100k titles.

Text features only, so no SASRec training is needed; 3 levels of 64 codes keep it
to well under a minute on a 2-core CPU.
"""

from __future__ import annotations

import pytest

from alignrec.config import DataConfig, TokenizeConfig
from alignrec.data.prepare import prepare_dataset
from alignrec.tokenize.artifacts import load_artifact
from alignrec.tokenize.stage import tokenize_dataset

pytestmark = pytest.mark.integration


def test_ml_100k_text_codes_are_unique_meaningful_and_aligned(tmp_path) -> None:
    dataset = prepare_dataset(DataConfig(dataset="ml-100k"), tmp_path / "data")
    config = TokenizeConfig(features="text", levels=3, codebook_size=64)
    config.align.steps = 100
    tokenize_dataset(dataset, None, config, 42, tmp_path / "tok")
    artifact = load_artifact(tmp_path / "tok")
    report = artifact.report
    assert len({tuple(r) for r in artifact.codes.tolist()}) == dataset.num_items == 1682
    assert report["collisions"]["after"]["collision_rate"] == 0.0
    assert all(row["utilisation"] > 0.9 for row in report["levels"])
    semantics = report["semantics"]["first_code_vs_text_neighbours"]
    assert semantics["observed"] > 3 * semantics["chance"]
    retrieval = report["alignment"]["title_retrieval"]
    assert retrieval["after"]["held_out"]["top10"] > retrieval["before"]["held_out"]["top10"]
    assert artifact.token_embeddings.shape == (3 * 64, 576)
