"""``alignrec precompute``: every user's top-K, once, into a new snapshot published atomically.

Users are ordered by history length (a batch of similar lengths wastes little
padding) and cut into shards of ``serve.batch_size``. A shard is the unit of
work (one model call), of Ray distribution and of checkpointing: the store
commits its lists together with its marker, so after a kill -9 the same
command resumes at the first uncommitted shard. The snapshot is published only
after checking that it holds exactly the planned users, each once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from alignrec.catalog import load_recommender, model_fingerprint
from alignrec.config import ServeConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.data.raw import read_text
from alignrec.errors import AlignrecError
from alignrec.provenance import code_versions, environment
from alignrec.rundir import RunDir
from alignrec.serve import records
from alignrec.serve.lists import ListMaker, Shard
from alignrec.serve.store import PUBLISHED, SnapshotStore, now


def read_user_file(path: str | Path, dataset: SequenceDataset) -> np.ndarray:
    """Internal ids of the original user ids listed one a line (blank lines and repeats ignored)."""
    index = dataset.user_index()
    users: dict[int, None] = {}
    try:
        lines = read_text(Path(path), "utf-8", "write one original user id a line, in UTF-8").splitlines()
    except OSError as exc:
        raise AlignrecError(f"--users {path}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        user = line.strip()
        if not user:
            continue
        if user not in index:
            raise AlignrecError(f"--users {path} line {number}: unknown user id {user!r}; list ids of the run's dataset")
        users[index[user]] = None
    if not users:
        raise AlignrecError(f"--users {path}: no user ids; write one original user id a line")
    return np.fromiter(users, dtype=np.int64, count=len(users))


def plan_shards(dataset: SequenceDataset, users: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Users ordered by history length (stable), cut into shards; the same inputs give the same plan."""
    if batch_size < 1:
        raise AlignrecError(f"serve.batch_size={batch_size}: must be at least 1")
    ordered = users[np.argsort(dataset.lengths[users], kind="stable")]
    return [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]


def job_fingerprint(model: str, model_print: str, users: np.ndarray, config: ServeConfig) -> str:
    """What a snapshot's content depends on; equal fingerprints resume the same staging snapshot."""
    parts = {
        "format": records.FORMAT,
        "model": model,
        "weights": model_print,
        "users": hashlib.sha256(np.ascontiguousarray(users, dtype=np.int64).tobytes()).hexdigest(),
        "k": config.k,
        "min_history": config.min_history,
        "batch_size": config.batch_size,
        "threads": config.threads,
        "code": code_versions(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def local_engine(maker: ListMaker, shards: list[np.ndarray], pending: list[int]) -> Iterator[Shard]:
    for shard in pending:
        yield shard, maker(shards[shard])


@dataclass
class PrecomputeResult:
    snapshot: str
    users: int
    computed: int
    """Users computed by this invocation (the rest were committed before a kill, or none if skipped)."""
    fallback: int
    wall_time_s: float
    digest: str
    resumed: bool
    skipped: bool
    pruned: list[str]


def verify_snapshot(
    store: SnapshotStore, snapshot: str, dataset: SequenceDataset, users: np.ndarray, shards: int
) -> tuple[str, int]:
    """Check that the snapshot holds every planned user exactly once; its digest and fallback count."""
    done = store.done_shards(snapshot)
    if sorted(done) != list(range(shards)) or sum(done.values()) != len(users):
        raise AlignrecError(
            f"{store.url}: snapshot {snapshot} has {len(done)}/{shards} shards and "
            f"{sum(done.values())}/{len(users)} users written; run the same command again to finish it"
        )
    stored = list(store.records(snapshot))
    expected = {str(dataset.user_ids[u]) for u in users}
    seen = [user for user, _ in stored]
    if len(seen) != len(set(seen)) or set(seen) != expected:
        missing, extra = len(expected - set(seen)), len(set(seen) - expected)
        raise AlignrecError(
            f"{store.url}: snapshot {snapshot} holds {len(seen)} lists for {len(expected)} users "
            f"({missing} missing, {extra} unexpected, {len(seen) - len(set(seen))} doubled); not published"
        )
    fallback = sum(records.decode(value).fallback for _, value in stored)
    return records.digest(stored), fallback


def precompute(
    run_dir: str | Path,
    store: SnapshotStore,
    config: ServeConfig,
    users_file: str | Path | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> PrecomputeResult:
    """Compute, verify, publish and prune; resumes an unfinished job with the same settings."""
    started = time.perf_counter()
    if config.k < 1:
        raise AlignrecError(f"serve.k={config.k}: must be at least 1")
    if config.threads < 1:
        raise AlignrecError(f"serve.threads={config.threads}: must be at least 1")
    if engine not in ("local", "ray"):
        raise AlignrecError(f"--engine {engine!r}: choose local or ray")
    run_dir = Path(run_dir).resolve()
    if config.model == "best":
        from alignrec.models.harmonized import best_on_validation  # torch and transformers: only when asked

        config = config.model_copy(update={"model": best_on_validation(RunDir(run_dir))})
    dataset = SequenceDataset.load(RunDir(run_dir).data)
    users = read_user_file(users_file, dataset) if users_file else np.arange(dataset.num_users, dtype=np.int64)
    shards = plan_shards(dataset, users, config.batch_size)
    fingerprint = job_fingerprint(config.model, model_fingerprint(run_dir, config.model, dataset), users, config)

    current = store.current()
    if current is not None and not force:
        info = store.info(current)
        if info.fingerprint == fingerprint:
            return PrecomputeResult(current, len(users), 0, info.meta.get("fallback_users", 0), 0.0,
                                    info.meta.get("digest", ""), False, True, [])

    meta: dict[str, Any] = {
        "format": records.FORMAT,
        "model": config.model,
        "k": config.k,
        "min_history": config.min_history,
        "batch_size": config.batch_size,
        "threads": config.threads,
        "environment": environment(),
        "dataset": dataset.fingerprint(),
        "dataset_name": dataset.name,
        "run": str(run_dir),
        "users": len(users),
        "shards": len(shards),
        "created_at": now(),
    }
    staging, resumed = store.begin(fingerprint, meta)
    done = store.done_shards(staging.id)
    pending = [shard for shard in range(len(shards)) if shard not in done]
    computed = 0
    bar = tqdm(total=len(users), initial=sum(done.values()), unit="user", disable=not progress,
               desc=f"precompute {staging.id}" + (" (resumed)" if resumed else ""))
    if pending:
        shard_stream: Iterable[Shard]
        if engine == "ray":
            from alignrec.serve.ray_engine import ray_engine

            shard_stream = ray_engine(run_dir, config, shards, pending, ray_address)
        else:
            maker = ListMaker(dataset, load_recommender(run_dir, config.model, dataset), config.k,
                              config.min_history, config.threads)
            shard_stream = local_engine(maker, shards, pending)
        for shard, shard_records in shard_stream:
            if store.write_shard(staging.id, shard, shard_records):
                computed += len(shard_records)
                bar.update(len(shard_records))
    bar.close()

    digest, fallback = verify_snapshot(store, staging.id, dataset, users, len(shards))
    wall = time.perf_counter() - started
    meta = {**staging.meta, "digest": digest, "fallback_users": fallback, "engine": engine,
            "published_at": now(), "last_job_wall_time_s": round(wall, 3)}
    store.publish(staging.id, meta)
    pruned = store.prune(config.keep)
    return PrecomputeResult(staging.id, len(users), computed, fallback, wall, digest, resumed, False, pruned)


def describe_snapshots(store: SnapshotStore) -> list[dict[str, Any]]:
    """One row per snapshot for ``alignrec snapshots``."""
    current = store.current()
    return [
        {
            "snapshot": info.id,
            "state": info.state + (" (current)" if info.id == current else ""),
            "model": info.meta.get("model", ""),
            "users": info.meta.get("users", ""),
            "written": sum(store.done_shards(info.id).values()),
            "k": info.meta.get("k", ""),
            "fallback": info.meta.get("fallback_users", "") if info.state == PUBLISHED else "",
            "created": info.meta.get("created_at", ""),
            "digest": info.meta.get("digest", ""),
        }
        for info in store.snapshots()
    ]
