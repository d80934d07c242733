"""Where pre-computed lists live: versioned snapshots behind one interface, chosen by URL.

A precompute job writes into a *staging* snapshot, one shard of users per
atomic write together with the shard's marker (so a killed job resumes at the
first unmarked shard and no user is ever written twice), then *publishes* it:
one atomic step marks it published and points ``current`` at it. Readers only
follow ``current``, so they never see a half-written snapshot.

URLs: ``sqlite:///abs/path.sqlite`` or ``sqlite:rel/path.sqlite`` (embedded, the
default; a bare path too) and ``redis://host:port/db?prefix=alignrec`` (redis-py).
Any other scheme, or a Redis URL with a bad host, port or database, is refused
with the valid forms, rather than taken for the name of a new SQLite file.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

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


FORMS = "a file path, sqlite:PATH, sqlite:///ABS/PATH, redis://HOST:PORT/DB or rediss://HOST:PORT/DB"
"""The store URLs ``--store`` accepts, for error messages."""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def check_redis_url(url: str) -> None:
    """A malformed ``redis[s]://`` URL fails here, naming the part, instead of deep in redis-py
    (a bad port is a ValueError traceback there)."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port != 0
    except ValueError:
        port_ok = False
    database = parts.path.removeprefix("/")
    if not parts.hostname:
        problem = "no host"
    elif not port_ok:
        problem = f"port {parts.netloc.rsplit(':', 1)[-1]!r} is not a number from 1 to 65535"
    elif database and not (database.isascii() and database.isdigit()):
        problem = f"database {database!r} is not a number"
    else:
        return
    raise StoreError(
        f"--store {url!r}: {problem}; write {parts.scheme}://HOST:PORT/DB, e.g. {parts.scheme}://127.0.0.1:6379/0"
    )


def open_store(url: str, create: bool = True) -> SnapshotStore:
    """A store from its URL: ``sqlite:...`` (a bare path also means SQLite) or ``redis://...``;
    anything else that looks like a scheme is an error, not the name of a new SQLite file.
    ``create=False``: a SQLite file must exist already (for commands that only read or switch)."""
    if url.startswith(("redis://", "rediss://")):
        check_redis_url(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from alignrec.serve.redis_store import RedisStore

        return RedisStore(url)
    scheme = _SCHEME.match(url)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        # sqlite:///abs/path -> /abs/path ; sqlite:rel/path -> rel/path
        path = path.removeprefix("//")
    elif scheme is not None:
        colon = "" if "://" in url else f" (for a file whose name has a colon: sqlite:{url})"
        raise StoreError(f"--store {url!r}: unknown scheme {scheme.group(1)!r}; use {FORMS}{colon}")
    else:
        path = url
    if not path:
        raise StoreError(f"--store {url!r}: no file; write sqlite:///abs/path.sqlite or sqlite:rel/path.sqlite")
    if not create and not Path(path).exists():
        raise StoreError(f"--store {url!r}: no such file; check the path (`alignrec precompute --store` creates it)")
    from alignrec.serve.sqlite_store import SQLiteStore

    return SQLiteStore(Path(path))
