"""``alignrec serve --workers N``: N processes answer on one port, and every one of them follows a newly
published snapshot without an admin reload (which would reach only one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx

from alignrec.serve.precompute import precompute
from alignrec.serve.store import open_store
from tests.serve.conftest import _free_port


def answering_processes(base: str, wanted: int, requests: int = 200) -> set[str]:
    """The start times of the processes that answered /metrics (one per worker reached), over new
    connections until ``wanted`` were seen (the kernel decides which worker accepts each)."""
    starts: set[str] = set()
    for _ in range(requests):
        with httpx.Client(base_url=base, timeout=5) as client:
            found = re.search(r"^process_start_time_seconds (\S+)$", client.get("/metrics").text, re.M)
        assert found
        starts.add(found.group(1))
        if len(starts) >= wanted:
            break
    return starts


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
        assert httpx.get(f"{base}/v1/info", timeout=5).json()["snapshot"] == first
        assert len(answering_processes(base, 2)) == 2

        with open_store(store_url) as store:  # published by another process, no reload request
            second = precompute(run_dir, store, serve_config.model_copy(update={"k": 12}), progress=False).snapshot
        assert second != first
        time.sleep(1.5)
        seen = {httpx.get(f"{base}/v1/info", timeout=5).json()["snapshot"] for _ in range(30)}
        assert seen == {second}
        answer = httpx.get(f"{base}/v1/users/u3/recommendations", params={"k": 12}, timeout=5)
        assert answer.status_code == 200 and len(answer.json()["items"]) == 12
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "2 workers" in output, output[-2000:]
