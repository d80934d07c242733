"""Item vectors: cf / text / both, the ID-only fallback, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from alignrec.errors import AlignrecError
from alignrec.tokenize.features import build_features, item_texts
from tests.conftest import make_dataset
from tests.tokenize.conftest import small_config, write_cf


def test_item_text_joins_fields_and_skips_missing(catalogue) -> None:
    texts = item_texts(catalogue, ["title", "genres", "description"])
    assert texts[catalogue.item_index()["5"]] == "piano key jazz 5; genres: piano"
    with pytest.raises(AlignrecError, match="text_fields"):
        item_texts(catalogue, ["plot"])


def test_both_is_a_weighted_concat_of_unit_parts(catalogue, sasrec_dir, tiny_text_model) -> None:
    config = small_config(cf_weight=2.0, text_weight=1.0)
    f = build_features(catalogue, sasrec_dir, config, tiny_text_model)
    assert f.kind == "both" and f.vectors.shape == (catalogue.num_items, 16 + 16)
    assert np.allclose(np.linalg.norm(f.vectors[:, :16], axis=1), 2.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(f.vectors[:, 16:], axis=1), 1.0, atol=1e-5)
    assert f.text_vectors is not None


def test_id_only_falls_back_to_cf_and_says_so(tmp_path) -> None:
    ds = make_dataset({"u": ["1", "2", "3"], "v": ["2", "3", "1"]})
    sasrec = write_cf(ds, tmp_path / "s", dim=4)
    f = build_features(ds, sasrec, small_config(features="both"))
    assert f.kind == "cf" and f.text_vectors is None and "ID-only" in f.notes[0]
    with pytest.raises(AlignrecError, match="ID-only"):
        build_features(ds, sasrec, small_config(features="text"))


def test_cf_from_another_dataset_is_refused(catalogue, tmp_path) -> None:
    other = make_dataset({"u": ["x", "y"]})
    with pytest.raises(AlignrecError, match="do not match"):
        build_features(catalogue, write_cf(other, tmp_path / "o"), small_config(features="cf"))
    with pytest.raises(AlignrecError, match="item_embeddings.npz: missing"):
        build_features(catalogue, tmp_path / "nothing", small_config(features="cf"))
    with pytest.raises(AlignrecError, match="needs --sasrec"):
        build_features(catalogue, None, small_config(features="cf"))
