"""The catalog's models as every stage sees them: history excluded, padded, loaded from a run, and a catalog
open to new models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignrec import catalog
from alignrec.catalog import ModelEntry, load_recommender, model_fingerprint, model_names, register_model
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.models.mostpop import MostPop
from alignrec.models.sasrec import SASRecRecommender
from alignrec.recommender import NO_ITEM
from tests.conftest import make_dataset


def test_popularity_ranks_by_count_and_skips_the_history() -> None:
    ds = make_dataset({"a": ["x", "y", "z"], "b": ["y", "z"], "c": ["z"]})
    pop = MostPop.fit(ds)
    index = ds.item_index()
    items, scores = pop.recommend([np.array([], dtype=np.int64), np.array([index["z"]])], 3)
    assert items[0].tolist() == [index["z"], index["y"], index["x"]]
    assert scores[0].tolist() == [3.0, 2.0, 1.0]
    # z is in the second history: only two items are left, the third slot is padding
    assert items[1].tolist() == [index["y"], index["x"], NO_ITEM] and scores[1, 2] == -np.inf


def test_sasrec_excludes_history_and_orders_by_score(run_dir) -> None:
    dataset = SequenceDataset.load(run_dir / "data")
    model = load_recommender(run_dir, "sasrec", dataset)
    assert isinstance(model, SASRecRecommender)
    histories = [dataset.sequence(u) for u in range(5)]
    items, scores = model.recommend(histories, 10)
    assert items.shape == scores.shape == (5, 10)
    for history, row, row_scores in zip(histories, items, scores, strict=True):
        assert not set(row.tolist()) & set(history.tolist())
        assert np.all(np.diff(row_scores) <= 0)
    with torch.no_grad():
        from alignrec.models.sasrec import left_pad

        full = model.model.score_last(left_pad(histories[:1], model.model.max_len)).numpy()[0]
    full[histories[0]] = -np.inf
    assert items[0, 0] == int(np.argmax(full))


def test_sasrec_pads_when_the_catalogue_runs_out(run_dir) -> None:
    dataset = SequenceDataset.load(run_dir / "data")
    model = load_recommender(run_dir, "sasrec", dataset)
    everything_but_two = np.arange(dataset.num_items - 2)
    items, scores = model.recommend([everything_but_two], 5)
    assert sorted(items[0, :2].tolist()) == [dataset.num_items - 2, dataset.num_items - 1]
    assert items[0, 2:].tolist() == [NO_ITEM] * 3 and np.all(np.isinf(scores[0, 2:]))


def test_loading_names_the_missing_file_and_foreign_data(run_dir, tmp_path) -> None:
    with pytest.raises(AlignrecError, match="best_model.pt: missing"):
        bare = _run_without_model(run_dir, tmp_path)
        load_recommender(bare, "sasrec", SequenceDataset.load(bare / "data"))
    other = tmp_path / "other"
    make_dataset({"a": ["x", "y"], "b": ["y", "x"]}).save(other / "data")
    (other / "sasrec").symlink_to(run_dir / "sasrec")
    with pytest.raises(AlignrecError, match="trained on other data"):
        load_recommender(other, "sasrec", SequenceDataset.load(other / "data"))
    with pytest.raises(AlignrecError, match="unknown; choose from"):
        load_recommender(run_dir, "nope", SequenceDataset.load(run_dir / "data"))


def _run_without_model(run_dir, tmp_path):
    folder = tmp_path / "bare"
    (folder / "data").mkdir(parents=True)
    for name in ("dataset.npz", "manifest.json"):
        (folder / "data" / name).write_bytes((run_dir / "data" / name).read_bytes())
    return folder


def test_a_registered_model_is_loadable_and_fingerprinted_by_its_files(run_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(catalog, "_CATALOG", dict(catalog._CATALOG))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"one")

    class Reverse:
        name = "reverse"
        batch_size = 8

        def __init__(self, dataset):
            self.n = dataset.num_items

        def recommend(self, histories, k, exclude_history=True):
            items = np.tile(np.arange(self.n)[::-1][:k], (len(histories), 1))
            return items, np.zeros(items.shape, dtype=np.float32)

    register_model(ModelEntry("reverse", lambda run, ds, horizon: Reverse(ds), lambda run: [weights]))
    assert model_names()[-1] == "reverse"
    dataset = SequenceDataset.load(run_dir / "data")
    model = load_recommender(run_dir, "reverse", dataset)
    assert model.recommend([np.array([0])], 2)[0].tolist() == [[29, 28]]
    before = model_fingerprint(run_dir, "reverse", dataset)
    weights.write_bytes(b"two")
    assert model_fingerprint(run_dir, "reverse", dataset) != before
    assert model_fingerprint(run_dir, "sasrec", dataset) != model_fingerprint(run_dir, "mostpop", dataset)
