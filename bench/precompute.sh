#!/usr/bin/env bash
# Precompute figures for BENCHMARKS.md ("Serving"): wall time, users/s and store size of an uninterrupted job;
# a job killed with kill -9 and resumed (same digest, every user once); Ray engine == local; Redis == SQLite.
# Usage: bench/precompute.sh [RUN_DIR] [OUT_DIR]   (needs redis-server on PATH; starts its own on port 6392)
set -euo pipefail
A=${ALIGNREC:-.venv/bin/alignrec}
RUN=${1:-runs/ml-1m}
OUT=${2:-runs/serve-bench}
KILL_AFTER=${KILL_AFTER:-6}
mkdir -p "$OUT"
rm -f "$OUT"/straight.sqlite* "$OUT"/killed.sqlite* "$OUT"/ray.sqlite*

lists() {  # total and distinct users of the current snapshot of a SQLite store
    python3 -c "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print('lists: %d, distinct users: %d' % \
        db.execute('SELECT COUNT(*), COUNT(DISTINCT user) FROM lists WHERE seq = (SELECT seq FROM pointer)').fetchone())" "$1"
}

echo "== 1. uninterrupted, local engine, SQLite"
/usr/bin/time -f "%e s wall, %M KB max RSS" $A precompute --run "$RUN" --store "sqlite:$OUT/straight.sqlite" 2>&1 \
    | grep -v "it/s\|user/s]" || true
echo "store file: $(stat -c %s "$OUT/straight.sqlite") bytes"
lists "$OUT/straight.sqlite"

echo "== 2. kill -9 after ${KILL_AFTER} s, then the same command again"
$A precompute --run "$RUN" --store "sqlite:$OUT/killed.sqlite" 2>/dev/null &
JOB=$!
sleep "$KILL_AFTER"
kill -9 "$JOB" 2>/dev/null || echo "the job finished before the kill"
wait "$JOB" || echo "killed (exit $?)"
if [ -e "$OUT/killed.sqlite" ]; then $A snapshots --store "sqlite:$OUT/killed.sqlite"
else echo "killed before it created the store"; fi
$A precompute --run "$RUN" --store "sqlite:$OUT/killed.sqlite" 2>/dev/null
lists "$OUT/killed.sqlite"

echo "== 3. Ray engine (a local cluster)"
/usr/bin/time -f "%e s wall" $A precompute --run "$RUN" --store "sqlite:$OUT/ray.sqlite" --engine ray 2>&1 \
    | grep -v "it/s\|user/s]\|WARNING\|INFO" || true

echo "== 4. Redis store"
REDIS_PORT=6392
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "" >/dev/null &
REDIS=$!
trap 'kill "$REDIS" 2>/dev/null || true' EXIT
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
/usr/bin/time -f "%e s wall" $A precompute --run "$RUN" --store "redis://127.0.0.1:$REDIS_PORT/0?prefix=bench" 2>&1 \
    | grep -v "it/s\|user/s]" || true
echo "redis: $(redis-cli -p "$REDIS_PORT" dbsize) keys, $(redis-cli -p "$REDIS_PORT" info memory | grep '^used_memory_dataset:' | tr -d '\r')"

echo "== digests of the current snapshots (must be equal)"
for store in "sqlite:$OUT/straight.sqlite" "sqlite:$OUT/killed.sqlite" "sqlite:$OUT/ray.sqlite" \
             "redis://127.0.0.1:$REDIS_PORT/0?prefix=bench"; do
    $A snapshots --store "$store" --json | python3 -c "import json, sys
rows = [r for r in json.load(sys.stdin) if r['state'].endswith('(current)')]
print(rows[0]['digest'], rows[0]['users'], sys.argv[1])" "$store"
done
