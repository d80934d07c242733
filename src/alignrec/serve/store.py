"""Where pre-computed lists live: versioned snapshots behind one interface, chosen by URL.

A precompute job writes into a *staging* snapshot, one shard of users per
atomic write together with the shard's marker (so a killed job resumes at the
first unmarked shard and no user is ever written twice), then *publishes* it:
one atomic step marks it published and points ``current`` at it. Readers only
follow ``current``, so they never see a half-written snapshot.

URLs: ``sqlite:///abs/path.sqlite`` or ``sqlite:rel/path.sqlite`` (embedded, the
default) and ``redis://host:port/db?prefix=alignrec`` (redis-py).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from alignrec.errors import AlignrecError

STAGING = "staging"
PUBLISHED = "published"


class StoreError(AlignrecError):
    """A store that cannot be opened or reached, or a snapshot that is not there."""


@dataclass
class SnapshotInfo:
    id: str
    seq: int
    """Creation order within the store."""
    state: str
    fingerprint: str
    """The job's settings and model; a staging snapshot with the same one is resumed."""
    meta: dict[str, Any] = field(default_factory=dict)


class SnapshotStore(ABC):
    """Snapshots of ``original user id -> encoded list`` (see ``alignrec.serve.records``)."""

    url: str

    # --- writing (precompute) ---

    @abstractmethod
    def begin(self, fingerprint: str, meta: dict[str, Any]) -> tuple[SnapshotInfo, bool]:
        """The staging snapshot for a job: an unfinished one with ``fingerprint`` (resumed=True), else a new one."""

    @abstractmethod
    def done_shards(self, snapshot: str) -> dict[int, int]:
        """Committed shards of a snapshot: shard -> users written."""

    @abstractmethod
    def write_shard(self, snapshot: str, shard: int, records: list[tuple[str, bytes]]) -> bool:
        """Write a shard's records and its marker atomically; False (nothing written) if already there."""

    @abstractmethod
    def publish(self, snapshot: str, meta: dict[str, Any]) -> None:
        """Mark published (with its final meta) and point ``current`` at it, in one atomic step."""

    @abstractmethod
    def activate(self, snapshot: str) -> None:
        """Point ``current`` at an already published snapshot (roll back or forward)."""

    @abstractmethod
    def delete(self, snapshot: str) -> None:
        """Remove a snapshot and its records (never the current one)."""

    # --- reading (serve) ---

    @abstractmethod
    def current(self) -> str | None:
        """The published snapshot readers use, or None before the first publish."""

    @abstractmethod
    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, staging ones included, oldest first."""

    @abstractmethod
    def get(self, snapshot: str, user: str) -> bytes | None:
        """One user's encoded list, or None if the snapshot has none for them."""

    @abstractmethod
    def records(self, snapshot: str) -> Iterator[tuple[str, bytes]]:
        """Every ``(user, encoded list)`` of a snapshot, in no particular order."""

    @abstractmethod
    def close(self) -> None: ...

    # --- shared logic ---

    def info(self, snapshot: str) -> SnapshotInfo:
        for candidate in self.snapshots():
            if candidate.id == snapshot:
                return candidate
        raise StoreError(f"{self.url}: no snapshot {snapshot!r}; `alignrec snapshots --store {self.url}` lists them")

    def prune(self, keep: int) -> list[str]:
        """Delete published snapshots beyond the newest ``keep`` (the current one always stays)."""
        current = self.current()
        published = [s.id for s in self.snapshots() if s.state == PUBLISHED]
        doomed = [s for s in published[: max(len(published) - max(keep, 1), 0)] if s != current]
        for snapshot in doomed:
            self.delete(snapshot)
        return doomed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_snapshot_id(seq: int, fingerprint: str) -> str:
    """``v<seq>-<fingerprint prefix>``: ordered, and says which job made it."""
    return f"v{seq}-{fingerprint[:8]}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def open_store(url: str) -> SnapshotStore:
    """A store from its URL: ``sqlite:...`` (a bare path also means SQLite) or ``redis://...``."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from alignrec.serve.redis_store import RedisStore

        return RedisStore(url)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        # sqlite:///abs/path -> /abs/path ; sqlite:rel/path -> rel/path
        path = path.removeprefix("//")
    elif "://" in url:
        raise StoreError(f"--store {url!r}: unknown scheme; use sqlite:PATH or redis://HOST:PORT/DB")
    else:
        path = url
    if not path:
        raise StoreError(f"--store {url!r}: no file; write sqlite:///abs/path.sqlite or sqlite:rel/path.sqlite")
    from alignrec.serve.sqlite_store import SQLiteStore

    return SQLiteStore(Path(path))
