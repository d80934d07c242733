"""The HTTP service: answers, fallbacks, validation (422, never 500), admin key, metrics, reload under load."""

from __future__ import annotations

import re
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from alignrec.catalog import load_recommender
from alignrec.data.dataset import SequenceDataset
from alignrec.serve.app import API_KEY_ENV, ServeState, create_app
from alignrec.serve.precompute import precompute
from alignrec.serve.store import open_store

KEY = "test-key"


@pytest.fixture
def store(run_dir, tmp_path, serve_config):
    with open_store(f"sqlite:{tmp_path / 'store.sqlite'}") as opened:
        precompute(run_dir, opened, serve_config.model_copy(update={"min_history": 2}), progress=False)
        yield opened


@pytest.fixture
def client(run_dir, store, serve_config, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, KEY)
    state = ServeState(run_dir, store, serve_config, recommender=load_recommender(run_dir, "sasrec", SequenceDataset.load(run_dir / "data")))
    with TestClient(create_app(state)) as test_client:
        yield test_client


def test_cached_list_with_original_ids_titles_and_ranks(client, store) -> None:
    body = client.get("/v1/users/u0/recommendations", params={"k": 3}).json()
    assert body["user_id"] == "u0" and body["snapshot"] == store.current() and body["source"] == "cache"
    assert [item["rank"] for item in body["items"]] == [1, 2, 3]
    assert all(item["item_id"].startswith("i") and item["title"] == f"Film {item['item_id'][1:]}"
               for item in body["items"])
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_unknown_and_short_history_users_get_the_flagged_popularity_list(client) -> None:
    unknown = client.get("/v1/users/stranger/recommendations", params={"k": 5}).json()
    short = client.get("/v1/users/lonely/recommendations", params={"k": 5}).json()
    assert unknown["source"] == short["source"] == "fallback"
    counts = [item["score"] for item in unknown["items"]]
    assert counts == sorted(counts, reverse=True) and len(counts) == 5
    assert "i3" not in [item["item_id"] for item in short["items"]]  # lonely's one item is excluded


@pytest.mark.parametrize("k", ["0", "11", "-1", "ten", "1.5"])
def test_k_outside_1_to_K_is_422(client, k) -> None:
    response = client.get("/v1/users/u0/recommendations", params={"k": k})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "k"]


def test_posted_history_is_computed_live(client) -> None:
    response = client.post("/v1/recommendations", json={"history": ["i1", "i2", "i3"], "k": 4})
    body = response.json()
    assert response.status_code == 200 and body["source"] == "live" and body["user_id"] is None
    assert len(body["items"]) == 4 and not {"i1", "i2", "i3"} & {item["item_id"] for item in body["items"]}


@pytest.mark.parametrize("payload", [
    b'{"history": ["i1", "i2"',              # malformed JSON
    b'{"history": "i1"}',                     # not a list
    b'{"history": ["i1"], "k": 0}',
    b'{"history": ["i1"], "k": 11}',
    b'{"history": ["i1"], "extra": 1}',
    b'[]',
    b'',
])
def test_bad_bodies_are_422_never_500(client, payload) -> None:
    response = client.post("/v1/recommendations", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text


def test_unknown_item_ids_are_named(client) -> None:
    response = client.post("/v1/recommendations", json={"history": ["i1", "nope", 42], "k": 3})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["loc"], d["input"]) for d in detail] == [(["body", "history", 1], "nope"), (["body", "history", 2], "42")]
    assert "unknown item id 'nope'" in detail[0]["msg"]


def test_too_short_history_and_a_slow_model_fall_back(run_dir, store, serve_config) -> None:
    class Sleepy:
        name = "sleepy"

        def recommend(self, histories, k):
            time.sleep(1.0)
            return np.zeros((len(histories), k), dtype=np.int64), np.zeros((len(histories), k), dtype=np.float32)

    config = serve_config.model_copy(update={"min_history": 2, "live_timeout_s": 0.05})
    with TestClient(create_app(ServeState(run_dir, store, config, recommender=Sleepy()))) as client:
        empty = client.post("/v1/recommendations", json={"history": []}).json()
        slow = client.post("/v1/recommendations", json={"history": ["i1", "i2"], "k": 3}).json()
        metrics = client.get("/metrics").text
    assert empty["source"] == slow["source"] == "fallback" and len(slow["items"]) == 3
    assert 'alignrec_live_failures_total{reason="timeout"} 1.0' in metrics
    assert 'alignrec_live_failures_total{reason="short_history"} 1.0' in metrics


def test_admin_reload_needs_the_key_and_switches_snapshot(client, run_dir, store, serve_config) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 403
    first = store.current()
    second = precompute(run_dir, store, serve_config.model_copy(update={"k": 5}), progress=False).snapshot
    assert client.get("/v1/users/u0/recommendations").json()["snapshot"] == first
    response = client.post("/v1/admin/reload", headers={"X-API-Key": KEY})
    assert response.json() == {"previous": first, "snapshot": second, "changed": True}
    assert client.get("/v1/users/u0/recommendations", params={"k": 5}).json()["snapshot"] == second
    assert client.get("/v1/users/u0/recommendations", params={"k": 6}).status_code == 422  # new K = 5


def test_admin_is_refused_when_no_key_is_configured(run_dir, store, serve_config, monkeypatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with TestClient(create_app(ServeState(run_dir, store, serve_config, recommender=object()))) as client:
        response = client.post("/v1/admin/reload", headers={"X-API-Key": "anything"})
    assert response.status_code == 403 and API_KEY_ENV in response.json()["detail"]


def test_health_readiness_metrics_and_openapi(client, run_dir, tmp_path, serve_config) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.get("/v1/users/u0/recommendations")
    client.get("/v1/users/stranger/recommendations")
    metrics = client.get("/metrics").text
    assert 'alignrec_recommendations_total{endpoint="user",source="cache"} 1.0' in metrics
    assert 'route="/v1/users/{user_id}/recommendations"' in metrics and "alignrec_snapshot_info{snapshot=" in metrics
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{user_id}/recommendations", "/v1/recommendations", "/v1/admin/reload"} <= set(paths)
    with open_store(f"sqlite:{tmp_path / 'empty.sqlite'}") as empty, \
            TestClient(create_app(ServeState(run_dir, empty, serve_config, recommender=object()))) as bare:
        ready = bare.get("/readyz")
        assert ready.status_code == 503 and "no published snapshot" in ready.json()["problems"][0]
        assert bare.get("/v1/users/u0/recommendations").json()["source"] == "fallback"


def test_reload_under_load_fails_no_request(run_dir, store, serve_config, monkeypatch) -> None:
    """A real uvicorn server: four threads send requests while the snapshot flips ten times."""
    monkeypatch.setenv(API_KEY_ENV, KEY)
    first = store.current()
    second = precompute(run_dir, store, serve_config, force=True, progress=False).snapshot
    state = ServeState(run_dir, store, serve_config, recommender=load_recommender(run_dir, "sasrec", SequenceDataset.load(run_dir / "data")))
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=base) as http:
            while not stop.is_set():
                response = http.get("/v1/users/u5/recommendations", params={"k": 10})
                if response.status_code != 200 or len(response.json()["items"]) != 10:
                    failures.append(response.text)
                seen.add(response.json()["snapshot"])

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}) as admin:
            for flip in range(10):
                store.activate(first if flip % 2 else second)
                assert admin.post("/v1/admin/reload").status_code == 200
                time.sleep(0.03)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        server.should_exit = True
        thread.join()
    assert not failures and seen == {first, second}


def test_a_snapshot_of_other_data_or_format_is_refused(store, serve_config, tmp_path) -> None:
    from alignrec.errors import AlignrecError
    from tests.conftest import make_dataset

    make_dataset({"a": ["x", "y"]}).save(tmp_path / "other" / "data")
    with pytest.raises(AlignrecError, match="computed from other data"):
        ServeState(tmp_path / "other", store, serve_config)
    current = store.info(store.current())
    store.publish(current.id, {**current.meta, "format": 0})
    with pytest.raises(AlignrecError, match="format 0"):
        ServeState(tmp_path / "other", store, serve_config)


def test_the_page_and_its_files_are_served_locally(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and "http" not in page.text.split("<footer")[0]
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("docs", ["/docs", "/redoc"])
def test_api_docs_load_their_scripts_and_styles_from_this_server(client, docs) -> None:
    page = client.get(docs)
    assert page.status_code == 200 and "/openapi.json" in page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(url.endswith(".js") for url in assets)
    assert not [url for url in assets if "://" in url or url.startswith("//")]  # nothing from a CDN
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_explore_endpoints_answer_with_titles_and_say_codes_are_missing(client, store) -> None:
    info = client.get("/v1/info").json()
    assert info["users"] == 62 and info["items"] == 30 and info["snapshot"] == store.current() and info["k"] == 10
    assert info["codes"] is False and "codes unavailable" in info["codes_note"] and info["model"] == "sasrec"
    assert info["live"] is True and info["live_error"] is None
    assert [u["user_id"] for u in client.get("/v1/users", params={"q": "u1", "limit": 2}).json()] == ["u1", "u10"]
    history = client.get("/v1/users/u1/history").json()
    assert history["user_id"] == "u1" and history["items"][0]["title"].startswith("Film ")
    found = client.get("/v1/items", params={"q": "film 2"}).json()
    assert found[0]["title"] == "Film 2" and found[0]["codes"] is None
    item = client.get("/v1/items/i2").json()
    assert item["neighbours"] == [] and "codes unavailable" in item["codes_note"]


def test_item_detail_with_codes_and_ids_holding_a_slash(coded_run, serve_config, tmp_path) -> None:
    with open_store(f"sqlite:{tmp_path / 's.sqlite'}") as empty:
        state = ServeState(coded_run, empty, serve_config, recommender=object())
        with TestClient(create_app(state)) as coded:
            item = coded.get("/v1/items/i2", params={"neighbours": 3}).json()
            assert len(item["codes"]) == 2 and len(item["neighbours"]) == 3 and item["codes_note"] is None
            assert coded.get("/v1/info").json()["levels"] == 2
            # ML-1M's item ids are titles such as "Face/Off (1997)"
            state.explorer.item_index["Face/Off (1997)"] = 2
            assert coded.get("/v1/items/Face%2FOff%20(1997)").json()["item_id"] == "i2"


@pytest.mark.parametrize(("path", "status"), [
    ("/v1/users?limit=0", 422),
    ("/v1/users?limit=101", 422),
    ("/v1/users?limit=ten", 422),
    ("/v1/items?q=" + "x" * 201, 422),
    ("/v1/items/i2?neighbours=-1", 422),
    ("/v1/items/i2?neighbours=1000", 422),
    ("/v1/items/nope", 404),
    ("/v1/items/", 404),
    ("/v1/users/nobody/history", 404),
])
def test_bad_explore_requests_are_4xx_never_500(client, path, status) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
