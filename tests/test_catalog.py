"""A model joins every stage by one catalog entry: trained and evaluated by ``alignrec run``, precomputed,
served live and on the page, with no other change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignrec import catalog
from alignrec.catalog import ModelEntry, TrainContext, model_fingerprint, model_names, register_model
from alignrec.cli import main
from alignrec.config import ServeConfig, load_config
from alignrec.data.dataset import SequenceDataset
from alignrec.io import read_json
from alignrec.recommender import NO_ITEM
from alignrec.rundir import RunDir

WEIGHTS = "order.npy"


class Newest:
    """Recommends the items with the highest ids first: a model nobody would ship, which is the point."""

    name = "newest"
    batch_size = 7

    def __init__(self, order: np.ndarray) -> None:
        self.order = order

    def recommend(self, histories, k, exclude_history=True):  # noqa: ANN001, ANN201
        items = np.full((len(histories), k), NO_ITEM, dtype=np.int64)
        scores = np.full((len(histories), k), -np.inf, dtype=np.float32)
        for row, history in enumerate(histories):
            best = [i for i in self.order if not exclude_history or i not in set(history.tolist())][:k]
            items[row, : len(best)] = best
            scores[row, : len(best)] = -np.arange(len(best), dtype=np.float32)
        return items, scores


def train(context: TrainContext) -> dict:
    folder = context.run.model("newest").path
    np.save(folder / WEIGHTS, np.arange(context.dataset.num_items)[::-1])
    return {"train_time_s": 0.0}


def load(run: RunDir, dataset: SequenceDataset, horizon: str | None) -> Newest:
    return Newest(np.load(run.model("newest").file(WEIGHTS)))


@pytest.fixture
def newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_CATALOG", dict(catalog._CATALOG))
    register_model(ModelEntry("newest", load, lambda run: [run.model("newest").file(WEIGHTS)], train,
                              help="highest item ids first"))


def test_a_registered_model_is_trained_evaluated_precomputed_and_served(newest, lcrec_dir, tmp_path: Path,
                                                                        capsys) -> None:
    from fastapi.testclient import TestClient

    from alignrec.serve.app import ServeState, create_app
    from alignrec.serve.precompute import precompute
    from alignrec.serve.store import open_store

    assert model_names()[-1] == "newest"
    run = tmp_path / "run"
    argv = ["run", "--out", str(run), "--set", "data.format=lcrec",
            "--set", f"data.path={lcrec_dir}", "--set", "models=[mostpop, newest]", "--set", "eval.ks=[1,5,10]"]
    assert main(argv) == 0
    metrics = read_json(run / "newest" / "metrics.json")
    assert metrics["model"] == "newest" and metrics["num_users"] == 40 and "recall@10" in metrics["metrics"]
    assert "| newest |" in (run / "comparison.md").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    assert "newest: done earlier, skipped" in capsys.readouterr().err

    dataset = SequenceDataset.load(run / "data")
    config = ServeConfig(model="newest", k=5, batch_size=16)
    with open_store(f"sqlite:{tmp_path / 'store.sqlite'}") as store:
        result = precompute(run, store, config, progress=False)
        assert result.users == dataset.num_users and result.fallback == 0
        assert store.info(result.snapshot).meta["model"] == "newest"
        state = ServeState(run, store, config, model="newest")
        with TestClient(create_app(state)) as client:
            user = str(dataset.user_ids[0])
            cached = client.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
            history = [str(dataset.item_ids[i]) for i in dataset.sequence(0)]
            live = client.post("/v1/recommendations", json={"history": history, "k": 5}).json()
    unseen = [str(dataset.item_ids[i]) for i in range(dataset.num_items - 1, -1, -1) if str(dataset.item_ids[i])
              not in history][:5]
    assert cached["source"] == "cache" and [r["item_id"] for r in cached["items"]] == unseen
    assert live["source"] == "live" and [r["item_id"] for r in live["items"]] == unseen
    assert model_fingerprint(run, "newest", dataset) != model_fingerprint(run, "mostpop", dataset)


def test_the_config_names_the_catalogs_models(newest) -> None:
    assert load_config(None, ["models=[newest]"]).models == ["newest"]
    from alignrec.errors import ConfigError

    with pytest.raises(ConfigError, match="'oldest': not a model of the catalog; choose one of mostpop, sasrec, llm, harmonized, newest"):
        load_config(None, ["models=[oldest]"])
