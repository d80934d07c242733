"""The whole tokenizer on a tiny catalogue: bijection, report, determinism, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.errors import AlignrecError
from alignrec.io import read_json
from alignrec.tokenize.artifacts import load_artifact
from alignrec.tokenize.inspect import format_inspection, nearest_in_code_space
from alignrec.tokenize.quantizers import restore_quantizer
from alignrec.tokenize.stage import tokenize_dataset
from tests.tokenize.conftest import small_config


@pytest.fixture
def tokenized(catalogue, sasrec_dir, tiny_text_model, tiny_llm, tmp_path):
    out = tmp_path / "tok"
    artifact = tokenize_dataset(catalogue, sasrec_dir, small_config(), 7, out, tiny_llm, tiny_text_model)
    return artifact, out


def test_every_item_gets_a_unique_code_sequence_and_the_report_says_so(tokenized, catalogue) -> None:
    artifact, out = tokenized
    assert artifact.codes.shape == (catalogue.num_items, 3)
    assert len({tuple(r) for r in artifact.codes.tolist()}) == catalogue.num_items
    report = read_json(out / "report.json")
    assert report["collisions"]["after"]["collision_rate"] == 0.0
    assert report["collisions"]["before"]["collision_rate"] > 0.0  # 96 items in 8^3 cells: some collide
    assert report["quantizer"]["name"] == "rqkmeans" and report["quantizer"]["settings"]["codebook_size"] == 8
    assert [row["level"] for row in report["levels"]] == [0, 1, 2]
    assert report["features"]["kind"] == "both" and "semantics" in report
    assert report["alignment"]["llm"]["spec"] == "tiny-random"
    for name in ["codes.json", "index.json", "code_usage.png", "token_embeddings.npz"]:
        assert (out / name).is_file(), name
    codes_json, index_json = read_json(out / "codes.json"), read_json(out / "index.json")
    assert codes_json["5"] == artifact.codes[catalogue.item_index()["5"]].tolist()
    assert index_json["5"] == [f"<{'abc'[l]}_{c}>" for l, c in enumerate(codes_json["5"])]


def test_loads_back_exactly(tokenized, catalogue, sasrec_dir, tiny_text_model) -> None:
    artifact, out = tokenized
    loaded = load_artifact(out)
    assert np.array_equal(loaded.codes, artifact.codes) and loaded.tokens == artifact.tokens
    assert np.array_equal(loaded.token_embeddings, artifact.token_embeddings)
    for a, b in zip(loaded.codebooks, artifact.codebooks, strict=True):
        assert np.array_equal(a, b)
    assert all(np.array_equal(loaded.projection[k], v) for k, v in artifact.projection.items())
    # the restored quantizer re-derives the pre-resolution codes from the features
    from alignrec.tokenize.features import build_features

    features = build_features(catalogue, sasrec_dir, small_config(), tiny_text_model).vectors
    q = restore_quantizer("rqkmeans", loaded.report["quantizer"]["settings"], loaded.codebooks,
                          loaded.quantizer_state)
    raw, _ = q.encode(features)
    assert np.array_equal(raw[:, :2], loaded.codes[:, :2])  # prefixes are never changed


@pytest.mark.parametrize("quantizer", ["rqkmeans", "rqvae"])
def test_same_seed_same_files(catalogue, sasrec_dir, tiny_text_model, tiny_llm, tmp_path, quantizer) -> None:
    config = small_config(quantizer=quantizer, codebook_size=16)
    for run in ("a", "b"):
        tokenize_dataset(catalogue, sasrec_dir, config, 3, tmp_path / run, tiny_llm, tiny_text_model)
    for name in ["codes.json", "index.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    a, b = load_artifact(tmp_path / "a"), load_artifact(tmp_path / "b")
    assert np.array_equal(a.token_embeddings, b.token_embeddings)
    assert len({tuple(r) for r in a.codes.tolist()}) == catalogue.num_items


def test_codes_follow_the_topics(tokenized, catalogue) -> None:
    """Items of one topic cluster in cf space: a first code should hold (almost) one topic."""
    artifact, _ = tokenized
    topics = np.array([int(i) % 4 for i in artifact.item_ids])
    first = artifact.codes[:, 0]
    purity = sum(np.bincount(topics[first == c]).max() for c in np.unique(first)) / len(first)
    assert purity > 0.9
    assert 0.0 <= artifact.report["semantics"]["first_code_vs_text_neighbours"]["observed"] <= 1.0
    _, neighbours = nearest_in_code_space(artifact, "4", k=5)
    assert sum(int(n.item_id) % 4 == 0 for n in neighbours) >= 4  # topic of item 4


def test_inspect_prints_codes_title_and_neighbours(tokenized) -> None:
    artifact, _ = tokenized
    text = format_inspection(artifact, "4", k=3)
    assert "guitar string rock 4" in text and "codes [" in text and len(text.splitlines()) == 6
    with pytest.raises(AlignrecError, match="not in this tokenizer output"):
        format_inspection(artifact, "nope")
