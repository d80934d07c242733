"""The service under faults: Redis crashing or hanging mid-service, load across reloads, the admin key.

Each Redis test runs a redis-server of its own on 127.0.0.1 (a shared one cannot be killed), so
these need the binary: skipped without it, failed without it where $ALIGNREC_TEST_REDIS or $CI
says the environment promises Redis. Run with ``-s`` to see the counts each test prints.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from alignrec.catalog import load_recommender
from alignrec.data.dataset import SequenceDataset
from alignrec.serve import app as app_module
from alignrec.serve.app import API_KEY_ENV, ServeState, create_app
from alignrec.serve.precompute import precompute
from alignrec.serve.redis_store import READ_TIMEOUT_S, RETRY_AFTER_S
from alignrec.serve.store import open_store
from tests.serve.conftest import REDIS_ENV, _free_port

KEY = "fault-key"
USERS = [f"u{i}" for i in range(60)]
RECOVERY_S = 5.0
"""The most a test waits for the service to serve from the snapshot again once Redis is back."""


class RedisProcess:
    """A private redis-server that a test can crash, freeze and start again on the same port with the same data."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary, self.folder, self.port = binary, folder, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (loading dump.rdb if a crash left one) and wait until it answers."""
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:  # refused, or BusyLoadingError while it reads its dump
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                    time.sleep(0.02)

    def crash(self) -> None:
        """SAVE (what a server with persistence has on disk), then SIGKILL: an outage, data kept."""
        import redis

        with redis.Redis(port=self.port) as client:
            client.save()
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get(REDIS_ENV) or os.environ.get("CI"):
            pytest.fail(f"redis-server is not on PATH, but ${REDIS_ENV} or $CI says Redis is installed here")
        pytest.skip("redis-server not on PATH (apt-get install redis-server): the fault tests need one to kill")
    server = RedisProcess(binary, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(run_dir, serve_config, private_redis, monkeypatch) -> Iterator[tuple[TestClient, ServeState]]:
    """The app in-process on a snapshot in the private Redis (min_history=2: `lonely` gets a cached fallback)."""
    monkeypatch.setenv(API_KEY_ENV, KEY)
    with open_store(f"{private_redis.url}?prefix=faults") as store:
        precompute(run_dir, store, serve_config.model_copy(update={"min_history": 2}), progress=False)
        state = ServeState(run_dir, store, serve_config, recommender=load_recommender(run_dir, "sasrec", SequenceDataset.load(run_dir / "data")))
        with TestClient(create_app(state)) as client:
            yield client, state


def _timed_get(client: TestClient, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - started


def _until_cached(client: TestClient, statuses: Counter[int], sources: Counter[str]) -> tuple[int, float]:
    """Requests (and seconds) until one is answered from the snapshot again; fails after RECOVERY_S."""
    started, sent = time.monotonic(), 0
    while True:
        response = client.get(f"/v1/users/{USERS[sent % len(USERS)]}/recommendations")
        sent += 1
        body = response.json()
        statuses[response.status_code] += 1
        sources[body.get("reason") or body.get("source")] += 1
        if body.get("source") == "cache":
            return sent, time.monotonic() - started
        assert time.monotonic() - started < RECOVERY_S, f"still not served from the snapshot: {body}"
        time.sleep(0.01)


def _store_errors(client: TestClient) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines() if line.startswith("alignrec_store_errors_total"))
    return float(line.split()[-1])


def test_redis_crash_gives_flagged_fallbacks_then_the_snapshot_again_without_restart(
    redis_client, private_redis
) -> None:
    client, state = redis_client
    snapshot = state.active.id
    assert client.get("/v1/users/u0/recommendations").json()["source"] == "cache"
    assert client.get("/readyz").status_code == 200

    private_redis.crash()
    outage = [_timed_get(client, f"/v1/users/{USERS[i % len(USERS)]}/recommendations") for i in range(300)]
    ready = client.get("/readyz")
    reload = client.post("/v1/admin/reload", headers={"X-API-Key": KEY})
    errors = _store_errors(client)

    private_redis.start()
    statuses: Counter[int] = Counter(r.status_code for r, _ in outage)
    sources: Counter[str] = Counter()
    sent, seconds = _until_cached(client, statuses, sources)
    after = client.get("/v1/users/u1/recommendations").json()
    ready_again = client.get("/readyz")

    bodies = [r.json() for r, _ in outage]
    slowest = max(s for _, s in outage)
    print(f"\nRedis crash: {len(outage)} requests during the outage, sources "
          f"{dict(Counter((b['source'], b['reason']) for b in bodies))}, statuses "
          f"{dict(Counter(r.status_code for r, _ in outage))}, slowest {slowest * 1e3:.1f} ms; "
          f"/readyz {ready.status_code}, reload {reload.status_code}; Redis back: {sent} requests in "
          f"{seconds:.2f} s until the snapshot served again (meanwhile {dict(sources)}); 500s overall: {statuses[500]}")
    assert statuses[500] == 0 and set(statuses) == {200}
    assert all(b["source"] == "fallback" and b["reason"] == "store_unavailable" and b["snapshot"] == snapshot
               and len(b["items"]) == 10 for b in bodies)
    assert slowest < 2.0  # a refused connection costs no wait (redis.Redis()'s default retries take ~3.6 s;
    #                        the margin is for a loaded machine stalling one request)
    assert errors == len(outage)
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert any(state.store.url in problem and "unreachable" in problem for problem in ready.json()["problems"])
    assert reload.status_code == 409 and state.store.url in reload.json()["detail"]
    assert seconds < RETRY_AFTER_S + 1.0
    assert after["source"] == "cache" and after["reason"] is None and after["snapshot"] == snapshot
    assert ready_again.status_code == 200 and state.store_down is None


def test_a_hung_redis_costs_one_read_timeout_then_requests_fail_fast(redis_client, private_redis, monkeypatch) -> None:
    """SIGSTOP: connections open, nothing answers (a host gone silent); then SIGCONT."""
    client, state = redis_client
    assert client.get("/v1/users/u0/recommendations").json()["source"] == "cache"
    reads: list[float] = []
    real_get = state.store.reader.get

    def counted_get(*args, **kwargs):
        reads.append(time.monotonic())
        return real_get(*args, **kwargs)

    monkeypatch.setattr(state.store.reader, "get", counted_get)
    private_redis.signal(signal.SIGSTOP)
    first, first_s = _timed_get(client, "/v1/users/u1/recommendations")
    tried, rest, retry_at = len(reads), [], state.store._retry_at
    assert retry_at > time.monotonic()  # the failed read started a back-off
    # Requests that start inside the back-off do not try Redis at all: counted, not timed, since a
    # loaded machine may stall any request for a moment.
    while time.monotonic() < retry_at - READ_TIMEOUT_S:
        rest.append(_timed_get(client, f"/v1/users/{USERS[len(rest) % len(USERS)]}/recommendations"))
    during_backoff = len(reads) - tried
    private_redis.signal(signal.SIGCONT)
    sent, seconds = _until_cached(client, Counter(), Counter())
    typical = sorted(s for _, s in rest)[len(rest) // 2]
    print(f"\nRedis frozen: first request {first_s * 1e3:.0f} ms, the next {len(rest)} {typical * 1e3:.1f} ms "
          f"(median) with {during_backoff} Redis reads, "
          f"all {dict(Counter(r.json()['reason'] for r, _ in [(first, 0), *rest]))}; "
          f"resumed: snapshot again after {sent} requests, {seconds:.2f} s")
    assert first.status_code == 200 and first.json()["reason"] == "store_unavailable"
    assert READ_TIMEOUT_S * 0.8 < first_s < READ_TIMEOUT_S + 1.0
    assert rest and all(r.status_code == 200 and r.json()["reason"] == "store_unavailable" for r, _ in rest)
    assert tried >= 1 and during_backoff == 0  # none of them waited for Redis
    assert typical < READ_TIMEOUT_S / 5
    assert seconds < RETRY_AFTER_S + 1.0


def test_the_admin_key_is_compared_in_constant_time(run_dir, tmp_path, serve_config, monkeypatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, KEY)
    compared: list[tuple[bytes, bytes]] = []
    real = app_module.secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(app_module.secrets, "compare_digest", spy)
    with open_store(f"sqlite:{tmp_path / 'store.sqlite'}") as store:
        precompute(run_dir, store, serve_config, progress=False)
        with TestClient(create_app(ServeState(run_dir, store, serve_config, recommender=object()))) as client:
            near = [client.post("/v1/admin/reload", headers={"X-API-Key": key}).status_code
                    for key in (KEY[:-1] + "x", KEY[:-1], KEY + "x", ("é" * len(KEY)).encode())]
            right = client.post("/v1/admin/reload", headers={"X-API-Key": KEY}).status_code
    assert near == [403] * 4 and right == 200
    assert len(compared) == 5 and all(expected == KEY.encode() for _, expected in compared)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc (Linux)")
def test_load_across_a_reload_every_second_fails_nothing_and_keeps_memory(run_dir, serve_config, tmp_path) -> None:
    """`alignrec serve` in a process of its own (so its RSS is its own): 2 s warm-up, then 8 s of four
    clients (user lookups, unknown users, live histories) while the snapshot flips and reloads every second."""
    url = f"sqlite:{tmp_path / 'store.sqlite'}"
    with open_store(url) as store:
        first = precompute(run_dir, store, serve_config, progress=False).snapshot
        second = precompute(run_dir, store, serve_config, force=True, progress=False).snapshot
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "alignrec.cli", "serve", "--run", str(run_dir), "--store", url, "--port", str(port)],
            env={**os.environ, API_KEY_ENV: KEY}, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    failures: list[str] = []
    tallies: list[Counter[str]] = []  # per client: snapshot -> answers
    sent = [0] * 4
    stop = threading.Event()

    def client(index: int) -> None:
        rng, mine = random.Random(index), Counter()
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                roll = rng.random()
                try:
                    if roll < 0.1:
                        response = http.post("/v1/recommendations", json={"history": ["i1", "i2", "i3"], "k": 5})
                    else:
                        user = "stranger" if roll < 0.2 else rng.choice(USERS)
                        response = http.get(f"/v1/users/{user}/recommendations")
                    body = response.json()
                    if response.status_code != 200 or not body["items"]:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    mine[body["snapshot"]] += 1
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    failures.append(repr(exc))
                sent[index] += 1
        tallies.append(mine)

    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"alignrec serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, "alignrec serve not ready after 60 s"
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        workers = [threading.Thread(target=client, args=(index,)) for index in range(len(sent))]
        for worker in workers:
            worker.start()
        try:
            time.sleep(2.0)
            warm, warm_sent = _rss_bytes(server.pid), sum(sent)
            reloads: list[int] = []
            with open_store(url) as store, httpx.Client(base_url=base, headers={"X-API-Key": KEY}) as admin:
                for flip in range(8):
                    store.activate(second if flip % 2 == 0 else first)
                    reloads.append(admin.post("/v1/admin/reload").status_code)
                    time.sleep(1.0)
            end = _rss_bytes(server.pid)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    ratio, loaded, seen = end / warm, sum(sent) - warm_sent, sum(tallies, Counter())
    print(f"\nload: {loaded} requests in 8 s after the warm-up ({sum(sent)} in all), "
          f"{len(failures)} failed, reloads {Counter(reloads)}, snapshots served {dict(seen)}; "
          f"RSS {warm / 2**20:.1f} MiB after warm-up, {end / 2**20:.1f} MiB at the end ({ratio:.3f})")
    assert not failures, failures[:5]
    assert reloads == [200] * 8 and set(seen) == {first, second}
    assert loaded > 100
    assert abs(ratio - 1) <= 0.10
