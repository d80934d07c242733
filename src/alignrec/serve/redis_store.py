"""The Redis store: snapshots under versioned keys, shared by any number of servers.

Keys (``P`` = the URL's ``prefix``, default ``alignrec``)::

    P:seq                       counter for snapshot ids
    P:snapshots                 hash: snapshot id -> JSON info (state, fingerprint, meta)
    P:current                   the pointer readers follow (a snapshot id)
    P:snap:<id>:shards          hash: committed shard -> users written
    P:snap:<id>:u:<user>        one user's encoded list

A shard is bulk-loaded in one pipelined MULTI/EXEC together with its marker,
under WATCH on the marker hash, so a shard is committed once or not at all.
Publishing sets the snapshot's state and the pointer in one MULTI/EXEC.

Reads (``current``, ``snapshots``, ``get``: what ``alignrec serve`` does per
request, on its event loop) go through a client of their own that fails fast:
0.5 s socket timeouts instead of redis-py's 5 s, one immediate retry on a
connection error (a pooled connection to a restarted server is replaced at
once), and for ``RETRY_AFTER_S`` after a connection error or timeout every read
fails without touching the network, so a hung Redis stalls the service for one
timeout a second, not for every request. The first read after that reconnects.
Writes (precompute) keep redis-py's defaults. ``?socket_timeout=`` and
``?socket_connect_timeout=`` in the URL override the timeouts of both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from alignrec.serve.store import PUBLISHED, STAGING, SnapshotInfo, SnapshotStore, StoreError, new_snapshot_id

_SCAN_BATCH = 1000
CONNECT_TIMEOUT_S = 0.5
READ_TIMEOUT_S = 0.5
RETRY_AFTER_S = 1.0
"""How long reads fail fast after a connection error or timeout before the next one tries Redis again."""

T = TypeVar("T")


class RedisStore(SnapshotStore):
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", "alignrec")
        self.url = url
        address = urlunsplit(parts._replace(query=urlencode(query)))
        self.client = redis.Redis.from_url(address)
        self.reader = redis.Redis.from_url(
            address, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=READ_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
        self._retry_at = 0.0
        self._down = ""
        try:
            self.reader.ping()
        except redis.RedisError as exc:
            raise StoreError(f"--store {url}: Redis not reachable ({exc}); start redis-server or fix the URL") from None

    def _read(self, what: str, command: Callable[..., T], *args: Any) -> T:
        """Run a read on the fast-failing client; every failure is a StoreError naming the store."""
        if self._retry_at:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise StoreError(f"{self.url}: Redis unreachable ({self._down}); next try in {wait:.1f} s")
        try:
            value = command(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._down = str(exc)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            raise StoreError(f"{self.url}: {what} failed, Redis unreachable ({exc})") from None
        except redis.RedisError as exc:
            raise StoreError(f"{self.url}: {what} failed ({exc})") from None
        self._retry_at = 0.0
        return value

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _shards_key(self, snapshot: str) -> str:
        return self._key("snap", snapshot, "shards")

    def user_key(self, snapshot: str, user: str) -> str:
        return self._key("snap", snapshot, "u", user)

    def _save_info(self, pipe: Any, info: SnapshotInfo) -> None:
        pipe.hset(self._key("snapshots"), info.id, json.dumps(
            {"seq": info.seq, "state": info.state, "fingerprint": info.fingerprint, "meta": info.meta}))

    def begin(self, fingerprint: str, meta: dict[str, Any]) -> tuple[SnapshotInfo, bool]:
        for info in reversed(self.snapshots()):
            if info.state == STAGING and info.fingerprint == fingerprint:
                return info, True
        seq = int(self.client.incr(self._key("seq")))
        info = SnapshotInfo(new_snapshot_id(seq, fingerprint), seq, STAGING, fingerprint, meta)
        self._save_info(self.client, info)
        return info, False

    def done_shards(self, snapshot: str) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.client.hgetall(self._shards_key(snapshot)).items()}

    def write_shard(self, snapshot: str, shard: int, records: list[tuple[str, bytes]]) -> bool:
        marker = self._shards_key(snapshot)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(marker)
                    if pipe.hexists(marker, shard):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    for user, value in records:
                        pipe.set(self.user_key(snapshot, user), value)
                    pipe.hset(marker, shard, len(records))
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # another writer touched the markers: look again

    def publish(self, snapshot: str, meta: dict[str, Any]) -> None:
        info = self.info(snapshot)
        with self.client.pipeline(transaction=True) as pipe:
            self._save_info(pipe, SnapshotInfo(info.id, info.seq, PUBLISHED, info.fingerprint, meta))
            pipe.set(self._key("current"), snapshot)
            pipe.execute()

    def activate(self, snapshot: str) -> None:
        if self.info(snapshot).state != PUBLISHED:
            raise StoreError(f"{self.url}: snapshot {snapshot} is not published; only published ones can be served")
        self.client.set(self._key("current"), snapshot)

    def delete(self, snapshot: str) -> None:
        if self.current() == snapshot:
            raise StoreError(f"{self.url}: {snapshot} is the current snapshot; activate another first")
        # Forget it first, so no listing shows a half-deleted snapshot; then free its keys.
        self.client.hdel(self._key("snapshots"), snapshot)
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self._key("snap", snapshot, "*"), count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def current(self) -> str | None:
        value = self._read("reading the current snapshot", self.reader.get, self._key("current"))
        return value.decode() if value is not None else None

    def snapshots(self) -> list[SnapshotInfo]:
        infos = []
        for snapshot, raw in self._read("listing snapshots", self.reader.hgetall, self._key("snapshots")).items():
            data = json.loads(raw)
            infos.append(SnapshotInfo(snapshot.decode(), data["seq"], data["state"], data["fingerprint"], data["meta"]))
        return sorted(infos, key=lambda info: info.seq)

    def get(self, snapshot: str, user: str) -> bytes | None:
        return self._read("lookup", self.reader.get, self.user_key(snapshot, user))

    def records(self, snapshot: str) -> Iterator[tuple[str, bytes]]:
        start = len(self.user_key(snapshot, ""))
        keys: list[bytes] = []
        for key in self.client.scan_iter(match=self.user_key(snapshot, "*"), count=_SCAN_BATCH):
            keys.append(key)
            if len(keys) >= _SCAN_BATCH:
                yield from self._fetch(keys, start)
                keys = []
        if keys:
            yield from self._fetch(keys, start)

    def _fetch(self, keys: list[bytes], start: int) -> Iterator[tuple[str, bytes]]:
        for key, value in zip(keys, self.client.mget(keys), strict=True):
            if value is not None:
                yield key[start:].decode(), value

    def close(self) -> None:
        self.client.close()
        self.reader.close()
