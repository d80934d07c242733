"""A tiny trained run directory, and a real Redis server for the store tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from alignrec.config import SASRecConfig, ServeConfig, TokenizeConfig
from alignrec.train.sasrec import train_sasrec
from tests.conftest import make_dataset

REDIS_ENV = "ALIGNREC_TEST_REDIS"
NUM_ITEMS = 30


def toy_sequences() -> dict[str, list[str]]:
    """60 users walking a 30-item cycle, plus two users with a single item."""
    rng = np.random.default_rng(0)
    sequences = {}
    for user in range(60):
        start, length = rng.integers(NUM_ITEMS), rng.integers(4, 12)
        sequences[f"u{user}"] = [f"i{(start + step) % NUM_ITEMS}" for step in range(length)]
    sequences["lonely"] = ["i3"]
    sequences["newbie"] = ["i7"]
    return sequences


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `alignrec run` leaves: data/ and a trained sasrec/ (tiny, two epochs)."""
    folder = tmp_path_factory.mktemp("run")
    dataset = make_dataset(toy_sequences(), {f"i{i}": {"title": f"Film {i}"} for i in range(NUM_ITEMS)}, "toy")
    dataset.save(folder / "data")
    torch.manual_seed(0)
    config = SASRecConfig(hidden=16, layers=1, heads=1, ffn_mult=1, dropout=0.0, max_len=12, epochs=2,
                          eval_every=1, batch_size=32)
    train_sasrec(dataset, config, folder / "sasrec", seed=0, progress=False)
    return folder


@pytest.fixture(scope="session")
def coded_run(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``run_dir`` plus a tokens/ folder (2 levels of 8 codes from SASRec's item embeddings), as an LLM run has."""
    from alignrec.data.dataset import SequenceDataset
    from alignrec.tokenize.stage import tokenize_dataset

    folder = tmp_path_factory.mktemp("coded_run")
    for name in ("data", "sasrec"):
        (folder / name).symlink_to(run_dir / name, target_is_directory=True)
    config = TokenizeConfig(features="cf", levels=2, codebook_size=8, kmeans_iters=20)
    config.align.llm, config.align.steps = "tiny-random", 5
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokenize_dataset(SequenceDataset.load(folder / "data"), folder / "sasrec", config, 0, folder / "tokens")
    finally:
        torch.set_num_threads(threads)
    return folder


@pytest.fixture
def serve_config() -> ServeConfig:
    """Shards of 8 users (so the toy run has 8 shards), top 10."""
    return ServeConfig(k=10, batch_size=8, keep=2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """CI's server ($ALIGNREC_TEST_REDIS, started by .ci/run), else a private redis-server on loopback."""
    if os.environ.get(REDIS_ENV):
        yield os.environ[REDIS_ENV]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The server with a key prefix of this test's own, removed afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield f"{redis_server}{'&' if '?' in redis_server else '?'}prefix={prefix}"
    client = redis.Redis.from_url(redis_server)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
