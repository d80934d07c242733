"""The embedded store: one SQLite file, no server (the default).

Chosen over LMDB by measurement (BENCHMARKS.md, "Serving"): both answer a
lookup in microseconds, far below an HTTP request's cost, and SQLite comes
with Python, commits a shard, its marker and the pointer in one transaction,
needs no map size chosen in advance, and can be inspected with ``sqlite3``.
WAL mode lets the server read while a precompute job writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignrec.serve.store import PUBLISHED, STAGING, SnapshotInfo, SnapshotStore, StoreError, new_snapshot_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, state TEXT NOT NULL,
    fingerprint TEXT NOT NULL, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
    seq INTEGER NOT NULL, shard INTEGER NOT NULL, users INTEGER NOT NULL,
    PRIMARY KEY (seq, shard)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lists (
    seq INTEGER NOT NULL, user TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (seq, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pointer (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class SQLiteStore(SnapshotStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path.resolve()}"
        if self.path.is_dir():
            raise StoreError(f"--store {self.path}: is a folder; give a file, e.g. {self.path}/store.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._seqs: dict[str, int] = {}
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"--store {self.path}: not a usable SQLite file ({exc})") from None
            # NORMAL + WAL: a killed process loses nothing committed; only a power cut may lose the last commits.
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            self._opened.append(db)
        return db

    def _seq(self, snapshot: str) -> int:
        seq = self._seqs.get(snapshot)
        if seq is None:
            row = self._connection().execute("SELECT seq FROM snapshots WHERE id = ?", (snapshot,)).fetchone()
            if row is None:
                raise StoreError(f"{self.url}: no snapshot {snapshot!r}")
            seq = self._seqs[snapshot] = row[0]
        return seq

    def begin(self, fingerprint: str, meta: dict[str, Any]) -> tuple[SnapshotInfo, bool]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT seq, id, meta FROM snapshots WHERE state = ? AND fingerprint = ? ORDER BY seq DESC",
                (STAGING, fingerprint),
            ).fetchone()
            if row is not None:
                db.execute("COMMIT")
                return SnapshotInfo(row[1], row[0], STAGING, fingerprint, json.loads(row[2])), True
            seq = db.execute(
                "INSERT INTO snapshots (state, fingerprint, meta) VALUES (?, ?, ?)",
                (STAGING, fingerprint, json.dumps(meta)),
            ).lastrowid
            assert seq is not None
            snapshot = new_snapshot_id(seq, fingerprint)
            db.execute("UPDATE snapshots SET id = ? WHERE seq = ?", (snapshot, seq))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return SnapshotInfo(snapshot, seq, STAGING, fingerprint, meta), False

    def done_shards(self, snapshot: str) -> dict[int, int]:
        rows = self._connection().execute("SELECT shard, users FROM shards WHERE seq = ?", (self._seq(snapshot),))
        return dict(rows.fetchall())

    def write_shard(self, snapshot: str, shard: int, records: list[tuple[str, bytes]]) -> bool:
        seq = self._seq(snapshot)
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            # The marker goes first: if the shard is already committed, its primary key refuses it.
            db.execute("INSERT INTO shards (seq, shard, users) VALUES (?, ?, ?)", (seq, shard, len(records)))
            # Plain INSERT: writing a user twice into one snapshot is an error, never a silent overwrite.
            db.executemany("INSERT INTO lists (seq, user, value) VALUES (?, ?, ?)",
                           ((seq, user, value) for user, value in records))
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            if shard in self.done_shards(snapshot):
                return False
            raise StoreError(f"{self.url}: shard {shard} of {snapshot} holds a user already written") from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    def publish(self, snapshot: str, meta: dict[str, Any]) -> None:
        seq = self._seq(snapshot)
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE snapshots SET state = ?, meta = ? WHERE seq = ?", (PUBLISHED, json.dumps(meta), seq))
            db.execute("INSERT OR REPLACE INTO pointer (name, seq) VALUES ('current', ?)", (seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def activate(self, snapshot: str) -> None:
        if self.info(snapshot).state != PUBLISHED:
            raise StoreError(f"{self.url}: snapshot {snapshot} is not published; only published ones can be served")
        self._connection().execute("INSERT OR REPLACE INTO pointer (name, seq) VALUES ('current', ?)",
                                   (self._seq(snapshot),))

    def delete(self, snapshot: str) -> None:
        seq = self._seq(snapshot)
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM pointer WHERE seq = ?", (seq,)).fetchone():
                raise StoreError(f"{self.url}: {snapshot} is the current snapshot; activate another first")
            for table in ("lists", "shards", "snapshots"):
                db.execute(f"DELETE FROM {table} WHERE seq = ?", (seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._seqs.pop(snapshot, None)

    def current(self) -> str | None:
        try:
            row = self._connection().execute(
                "SELECT s.id FROM pointer p JOIN snapshots s ON s.seq = p.seq WHERE p.name = 'current'"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: cannot read the current snapshot ({exc})") from None
        return row[0] if row else None

    def snapshots(self) -> list[SnapshotInfo]:
        rows = self._connection().execute("SELECT id, seq, state, fingerprint, meta FROM snapshots ORDER BY seq")
        return [SnapshotInfo(i, s, st, f, json.loads(m)) for i, s, st, f, m in rows.fetchall()]

    def get(self, snapshot: str, user: str) -> bytes | None:
        try:
            seq = self._seqs.get(snapshot)
            if seq is None:
                row = self._connection().execute("SELECT seq FROM snapshots WHERE id = ?", (snapshot,)).fetchone()
                if row is None:
                    return None  # pruned (or never there): no list
                seq = self._seqs[snapshot] = row[0]
            row = self._connection().execute(
                "SELECT value FROM lists WHERE seq = ? AND user = ?", (seq, user)
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.url}: lookup failed ({exc})") from None
        return row[0] if row else None

    def records(self, snapshot: str) -> Iterator[tuple[str, bytes]]:
        yield from self._connection().execute("SELECT user, value FROM lists WHERE seq = ?", (self._seq(snapshot),))

    def close(self) -> None:
        for db in self._opened:
            db.close()
        self._opened.clear()
        self._local = threading.local()
