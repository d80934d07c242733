"""Which embedded store: SQLite (ours) vs LMDB, on the same snapshot, in one run.

Both load the records of a published snapshot shard by shard, one transaction per
shard holding its lists and its marker (what precompute does), then answer random
single-user lookups, one transaction each (what a request does). Prints load time,
lookups/s and file size side by side, and the ratios.

    pip install lmdb    # or: pip install -e '.[bench]'
    python bench/embedded_store.py --store sqlite:runs/serve/ml1m.sqlite
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from alignrec.serve.store import open_store

SHARD = 256


def shards(records: list[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    return [records[i : i + SHARD] for i in range(0, len(records), SHARD)]


def sqlite_side(records: list[tuple[str, bytes]], folder: Path, users: list[str], seconds: float) -> dict[str, float]:
    path = folder / "bench.sqlite"
    started = time.perf_counter()
    with open_store(f"sqlite:{path}") as store:
        info, _ = store.begin("f" * 64, {})
        for number, shard in enumerate(shards(records)):
            store.write_shard(info.id, number, shard)
        store.publish(info.id, {})
    load = time.perf_counter() - started
    with open_store(f"sqlite:{path}") as store:
        snapshot = store.current()
        rate = lookups(lambda user: store.get(snapshot, user), users, seconds)
    size = sum(p.stat().st_size for p in folder.glob("bench.sqlite*"))
    return {"load_s": load, "lookups_s": rate, "bytes": size}


def lmdb_side(records: list[tuple[str, bytes]], folder: Path, users: list[str], seconds: float) -> dict[str, float]:
    path = str(folder / "bench.lmdb")
    # map_size is a ceiling chosen in advance (sparse file); a snapshot outgrowing it fails.
    # sync=False matches SQLite's WAL + synchronous=NORMAL: a killed process loses nothing
    # committed, a power cut may lose the last commits.
    env = lmdb.open(path, map_size=1 << 30, max_dbs=4, subdir=False, sync=False)
    started = time.perf_counter()
    lists, markers, meta = (env.open_db(name) for name in (b"lists:v1", b"shards:v1", b"meta"))
    for number, shard in enumerate(shards(records)):
        with env.begin(write=True) as txn:
            if txn.get(str(number).encode(), db=markers) is not None:
                continue
            for user, value in shard:
                txn.put(user.encode(), value, db=lists)
            txn.put(str(number).encode(), str(len(shard)).encode(), db=markers)
    with env.begin(write=True) as txn:
        txn.put(b"current", b"v1", db=meta)
    load = time.perf_counter() - started

    def get(user: str) -> bytes | None:
        with env.begin(db=lists) as txn:
            return txn.get(user.encode())

    rate = lookups(get, users, seconds)
    env.close()
    return {"load_s": load, "lookups_s": rate, "bytes": os.path.getsize(path)}


def lookups(get, users: list[str], seconds: float) -> float:  # type: ignore[no-untyped-def]
    rng = random.Random(0)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for user in rng.choices(users, k=1000):
            assert get(user) is not None
        done += 1000
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="a store whose current snapshot supplies the records")
    parser.add_argument("--seconds", type=float, default=3.0, help="lookup time per store and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open_store(args.store) as source:
        records = sorted(source.records(source.current()))
    users = [user for user, _ in records]
    print(f"{len(records):,} lists, {sum(len(v) for _, v in records):,} bytes of values, shards of {SHARD}")
    results: dict[str, list[dict[str, float]]] = {"sqlite": [], "lmdb": []}
    for _ in range(args.rounds):
        for name, side in (("sqlite", sqlite_side), ("lmdb", lmdb_side)):
            with tempfile.TemporaryDirectory() as folder:
                results[name].append(side(records, Path(folder), users, args.seconds))
    best = {name: {key: (min if key == "load_s" else max)(r[key] for r in rows) for key in rows[0]}
            for name, rows in results.items()}
    print(f"{'store':<8} {'bulk load s':>12} {'lookups/s':>11} {'file bytes':>12}   (best of {args.rounds})")
    for name, row in best.items():
        print(f"{name:<8} {row['load_s']:>12.3f} {row['lookups_s']:>11,.0f} {row['bytes']:>12,}")
    print(f"lmdb / sqlite: load time {best['lmdb']['load_s'] / best['sqlite']['load_s']:.2f}x, "
          f"lookups/s {best['lmdb']['lookups_s'] / best['sqlite']['lookups_s']:.2f}x, "
          f"size {best['lmdb']['bytes'] / best['sqlite']['bytes']:.2f}x")


if __name__ == "__main__":
    main()
