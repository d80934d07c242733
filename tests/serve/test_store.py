"""Both stores keep the same contract: staged shards once, atomic publish, pruning, pointer swaps."""

from __future__ import annotations

import pytest

from alignrec.serve.sqlite_store import SQLiteStore
from alignrec.serve.store import PUBLISHED, STAGING, SnapshotStore, StoreError, check_redis_url, open_store


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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bogus:thing", r"unknown scheme 'bogus'; use a file path, sqlite:PATH.*\(for a file whose name has a colon: "
                        r"sqlite:bogus:thing\)"),
        ("redis:localhost", r"unknown scheme 'redis'"),
        ("redis://localhost:abc/0", r"port 'abc' is not a number from 1 to 65535; write redis://HOST:PORT/DB"),
        ("redis://localhost:70000/0", r"port '70000' is not a number"),
        ("rediss://h:0/1", r"port '0' is not a number"),
        ("redis:///0", r"no host"),
        ("redis://h:6379/zero?prefix=p", r"database 'zero' is not a number"),
    ],
)
def test_bad_urls_are_refused_and_create_no_file(tmp_path, monkeypatch, url, message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=message):
        open_store(url)
    assert list(tmp_path.iterdir()) == []


def test_well_formed_redis_urls_pass_the_check() -> None:
    for url in ("redis://127.0.0.1:6379/0", "redis://localhost", "rediss://user:pw@host:6380/2?prefix=x&socket_timeout=1"):
        check_redis_url(url)


def test_a_file_with_a_colon_is_written_with_sqlite(tmp_path) -> None:
    assert open_store(f"sqlite:{tmp_path / 'a:b.sqlite'}").path == tmp_path / "a:b.sqlite"


def test_without_create_a_missing_file_is_an_error(tmp_path) -> None:
    with pytest.raises(StoreError, match=r"no.sqlite': no such file"):
        open_store(str(tmp_path / "no.sqlite"), create=False)
    assert not (tmp_path / "no.sqlite").exists()
    open_store(str(tmp_path / "yes.sqlite")).close()
    open_store(str(tmp_path / "yes.sqlite"), create=False).close()
