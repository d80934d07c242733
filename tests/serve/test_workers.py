"""``alignrec serve --workers N``: N processes answer on one port, and every one of them follows a newly
published snapshot without an admin reload (which would reach only one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from alignrec.serve.precompute import precompute
from alignrec.serve.store import open_store
from tests.serve.conftest import _free_port


def worker_pids(server: int, count: int, timeout: float = 60) -> list[int]:
    """The service's worker processes (children of the supervisor), once ``count`` are there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [int(pid) for path in Path(f"/proc/{server}/task").glob("*/children")
                    for pid in path.read_text().split()]
        # multiprocessing's resource tracker is a child too; the workers run spawn_main
        pids = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
                and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        if len(pids) >= count:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"{count} workers did not start")


def snapshot_of_each(base: str, workers: list[int]) -> list[str]:
    """The snapshot each worker serves: the others are stopped while it is asked, so it must answer."""
    seen = []
    for worker in workers:
        others = [pid for pid in workers if pid != worker]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            seen.append(httpx.get(f"{base}/v1/info", timeout=10).json()["snapshot"])
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
    return seen


def test_two_workers_answer_and_both_follow_a_new_snapshot(run_dir, tmp_path, serve_config) -> None:
    store_url = f"sqlite:{tmp_path / 'store.sqlite'}"
    with open_store(store_url) as store:
        first = precompute(run_dir, store, serve_config.model_copy(update={"k": 10}), progress=False).snapshot
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "alignrec.cli", "serve", "--run", str(run_dir), "--store", store_url,
         "--port", str(port), "--workers", "2", "--set", "serve.follow_s=0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/v1/info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        workers = worker_pids(server.pid, 2)
        assert len(workers) == 2 and snapshot_of_each(base, workers) == [first, first]

        with open_store(store_url) as store:  # published by another process, no reload request
            second = precompute(run_dir, store, serve_config.model_copy(update={"k": 12}), progress=False).snapshot
        assert second != first
        time.sleep(1.5)
        assert snapshot_of_each(base, workers) == [second, second]
        answer = httpx.get(f"{base}/v1/users/u3/recommendations", params={"k": 12}, timeout=5)
        assert answer.status_code == 200 and len(answer.json()["items"]) == 12
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "2 workers" in output, output[-2000:]
