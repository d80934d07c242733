"""Both stores keep the same contract: staged shards once, atomic publish, pruning, pointer swaps."""

from __future__ import annotations

import pytest

from alignrec.serve.sqlite_store import SQLiteStore
from alignrec.serve.store import PUBLISHED, STAGING, SnapshotStore, StoreError, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path) -> SnapshotStore:
    url = f"sqlite:{tmp_path / 'store.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    with open_store(url) as opened:
        yield opened


def _published(store: SnapshotStore, fingerprint: str, users: dict[str, bytes]) -> str:
    info, _ = store.begin(fingerprint, {"k": 1})
    store.write_shard(info.id, 0, sorted(users.items()))
    store.publish(info.id, {"k": 1, "done": True})
    return info.id


def test_staging_is_invisible_until_published_atomically(store) -> None:
    info, resumed = store.begin("f" * 64, {"k": 1})
    assert not resumed and info.state == STAGING and info.id.startswith("v")
    assert store.write_shard(info.id, 0, [("a", b"1"), ("b", b"2")])
    assert store.current() is None
    store.publish(info.id, {"k": 1, "digest": "d"})
    assert store.current() == info.id
    assert store.info(info.id).state == PUBLISHED and store.info(info.id).meta["digest"] == "d"
    assert store.get(info.id, "a") == b"1" and store.get(info.id, "zz") is None
    assert sorted(store.records(info.id)) == [("a", b"1"), ("b", b"2")]


def test_a_shard_is_committed_once_and_a_job_resumes_its_own_snapshot(store) -> None:
    info, _ = store.begin("a" * 64, {})
    assert store.write_shard(info.id, 3, [("x", b"1")])
    assert not store.write_shard(info.id, 3, [("x", b"changed"), ("y", b"2")])
    assert store.done_shards(info.id) == {3: 1}
    assert store.get(info.id, "x") == b"1" and store.get(info.id, "y") is None
    again, resumed = store.begin("a" * 64, {})
    assert resumed and again.id == info.id
    other, resumed = store.begin("b" * 64, {})
    assert not resumed and other.id != info.id


def test_prune_keeps_the_newest_and_the_current(store) -> None:
    ids = [_published(store, f"{n}" * 64, {"u": bytes([n])}) for n in range(4)]
    store.activate(ids[0])  # rolled back to the oldest
    assert store.prune(keep=2) == ids[1:2]
    assert [s.id for s in store.snapshots()] == [ids[0], ids[2], ids[3]]
    assert store.get(ids[1], "u") is None and store.get(ids[0], "u") == b"\x00"
    with pytest.raises(StoreError, match="current snapshot"):
        store.delete(ids[0])


def test_only_published_snapshots_can_be_activated(store) -> None:
    staging, _ = store.begin("c" * 64, {})
    with pytest.raises(StoreError, match="not published"):
        store.activate(staging.id)
    with pytest.raises(StoreError, match="no snapshot"):
        store.activate("v999-nothere")


def test_sqlite_refuses_a_doubled_user_across_shards(tmp_path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    info, _ = store.begin("d" * 64, {})
    store.write_shard(info.id, 0, [("u", b"1")])
    with pytest.raises(StoreError, match="already written"):
        store.write_shard(info.id, 1, [("u", b"1")])
    assert store.done_shards(info.id) == {0: 1}


def test_urls_choose_the_store(tmp_path) -> None:
    assert isinstance(open_store(str(tmp_path / "plain.sqlite")), SQLiteStore)
    assert open_store(f"sqlite://{tmp_path}/abs.sqlite").path == tmp_path / "abs.sqlite"
    with pytest.raises(StoreError, match="unknown scheme"):
        open_store("mongodb://x")
    with pytest.raises(StoreError, match="is a folder"):
        open_store(f"sqlite:{tmp_path}")
    with pytest.raises(StoreError, match="Redis not reachable"):
        open_store("redis://127.0.0.1:1/0")
