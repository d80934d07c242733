"""Precompute: every user once, fallback flagged, resume after kill -9, Ray == local, Redis == SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from alignrec import catalog
from alignrec.catalog import ModelEntry
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.models.mostpop import MostPop
from alignrec.serve import records
from alignrec.serve.precompute import plan_shards, precompute
from alignrec.serve.store import PUBLISHED, STAGING, open_store


def sqlite(tmp_path, name: str = "store"):
    return open_store(f"sqlite:{tmp_path / name}.sqlite")


def test_every_user_gets_one_list_and_short_histories_the_flagged_fallback(run_dir, tmp_path, serve_config):
    dataset = SequenceDataset.load(run_dir / "data")
    config = serve_config.model_copy(update={"min_history": 2})
    with sqlite(tmp_path) as store:
        result = precompute(run_dir, store, config, progress=False)
        assert store.current() == result.snapshot and not result.resumed
        stored = dict(store.records(result.snapshot))
        meta = store.info(result.snapshot).meta
    assert sorted(stored) == sorted(str(u) for u in dataset.user_ids)
    assert result.users == result.computed == dataset.num_users == 62
    flagged = {user for user, value in stored.items() if records.decode(value).fallback}
    assert flagged == {"lonely", "newbie"} and result.fallback == meta["fallback_users"] == 2
    popular = MostPop.fit(dataset)
    lonely = records.decode(stored["lonely"])
    assert list(lonely.items) == popular.recommend([dataset.sequence(dataset.user_index()["lonely"])], 10)[0][0].tolist()
    u0 = records.decode(stored["u0"])
    assert len(u0.items) == 10 and not set(u0.items) & set(dataset.sequence(0).tolist())
    assert meta["digest"] == result.digest == records.digest(stored.items())


def test_same_settings_skip_force_recomputes_and_old_snapshots_are_pruned(run_dir, tmp_path, serve_config):
    with sqlite(tmp_path) as store:
        first = precompute(run_dir, store, serve_config, progress=False)
        again = precompute(run_dir, store, serve_config, progress=False)
        assert again.skipped and again.snapshot == first.snapshot
        forced = [precompute(run_dir, store, serve_config, force=True, progress=False) for _ in range(2)]
        assert {f.digest for f in forced} == {first.digest}
        assert forced[-1].pruned == [first.snapshot]  # keep=2
        assert [s.id for s in store.snapshots()] == [f.snapshot for f in forced]


def test_users_file_limits_the_job_and_bad_ids_name_the_line(run_dir, tmp_path, serve_config):
    listed = tmp_path / "users.txt"
    listed.write_text("u3\n\nu1\nu3\n")
    with sqlite(tmp_path) as store:
        result = precompute(run_dir, store, serve_config, users_file=listed, progress=False)
        assert sorted(user for user, _ in store.records(result.snapshot)) == ["u1", "u3"]
    listed.write_text("u1\nghost\n")
    with sqlite(tmp_path, "other") as store, pytest.raises(AlignrecError, match="line 2: unknown user id 'ghost'"):
        precompute(run_dir, store, serve_config, users_file=listed, progress=False)
    listed.write_bytes(b"u1\nu\xe9\n")
    with sqlite(tmp_path, "latin") as store, pytest.raises(AlignrecError, match=r"users.txt line 2: not valid UTF-8"):
        precompute(run_dir, store, serve_config, users_file=listed, progress=False)


def test_shards_group_similar_lengths_and_cover_everyone_once(run_dir) -> None:
    dataset = SequenceDataset.load(run_dir / "data")
    shards = plan_shards(dataset, np.arange(dataset.num_users), 8)
    flat = np.concatenate(shards)
    assert sorted(flat.tolist()) == list(range(dataset.num_users)) and len(shards) == 8
    assert np.all(np.diff(dataset.lengths[flat]) >= 0)


SLOW_JOB = """
import sys, time
from alignrec.catalog import ModelEntry, register_model
from alignrec.config import ServeConfig
from alignrec.models.mostpop import MostPop
from alignrec.serve.precompute import precompute
from alignrec.serve.store import open_store

class Stuck(MostPop):
    # Answers two shards, then hangs in the third until the test kills the job (no race with timing).
    calls = 0

    def recommend(self, histories, k, exclude_history=True):
        Stuck.calls += 1
        if Stuck.calls > 2:
            time.sleep(600)
        return super().recommend(histories, k)

register_model(ModelEntry("slow", lambda run, ds, horizon: Stuck.fit(ds)))
precompute(sys.argv[1], open_store(sys.argv[2]), ServeConfig(model="slow", k=10, batch_size=8), progress=False)
"""


def test_kill_9_mid_job_then_resume_equals_an_uninterrupted_run(run_dir, tmp_path, serve_config, monkeypatch):
    monkeypatch.setattr(catalog, "_CATALOG", dict(catalog._CATALOG))
    catalog.register_model(ModelEntry("slow", lambda run, ds, horizon: MostPop.fit(ds)))
    config = serve_config.model_copy(update={"model": "slow", "keep": 3})
    url = f"sqlite:{tmp_path / 'killed.sqlite'}"
    job = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(run_dir), url], env=os.environ.copy())
    with open_store(url) as store:
        deadline = time.monotonic() + 180
        done: dict[int, int] = {}
        while time.monotonic() < deadline and len(done) < 2:
            time.sleep(0.05)
            staging = [s for s in store.snapshots() if s.state == STAGING]
            done = store.done_shards(staging[0].id) if staging else {}
        time.sleep(0.5)  # the job is now stuck in its third model call, past any commit
        job.send_signal(signal.SIGKILL)
        job.wait()
        assert 2 <= len(store.done_shards(staging[0].id)) < 8, "the job was not killed mid-way"
        assert store.current() is None  # nothing half-done was published
        killed_at = sum(store.done_shards(staging[0].id).values())
        resumed = precompute(run_dir, store, config, progress=False)
        stored = [user for user, _ in store.records(resumed.snapshot)]
    assert resumed.resumed and resumed.snapshot == staging[0].id
    assert resumed.computed == 62 - killed_at
    assert len(stored) == len(set(stored)) == 62
    with sqlite(tmp_path, "straight") as store:
        straight = precompute(run_dir, store, config, progress=False)
    assert resumed.digest == straight.digest


def test_redis_snapshot_equals_sqlite_snapshot(run_dir, tmp_path, serve_config, redis_url):
    with sqlite(tmp_path) as store:
        embedded = precompute(run_dir, store, serve_config, progress=False)
    with open_store(redis_url) as store:
        remote = precompute(run_dir, store, serve_config, progress=False)
        assert store.info(remote.snapshot).state == PUBLISHED and store.current() == remote.snapshot
        assert records.digest(store.records(remote.snapshot)) == embedded.digest
    assert remote.digest == embedded.digest and remote.users == 62


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster on 127.0.0.1, shared by the module (starting one costs ~10 s)."""
    # CI installs Ray (make setup): there a missing Ray fails instead of skipping.
    ray = __import__("ray") if os.environ.get("CI") else pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    yield ray
    ray.shutdown()


def test_snapshot_bytes_do_not_depend_on_threads_or_engine(run_dir, tmp_path, serve_config, ray_cluster):
    """Local at 1 and at 2 process threads, and Ray actors: one digest (each scores at serve.threads)."""
    digests = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with sqlite(tmp_path, f"local{threads}") as store:
                digests[f"local, {threads} threads"] = precompute(run_dir, store, serve_config, progress=False).digest
            assert torch.get_num_threads() == threads  # pinned for the model call only
    finally:
        torch.set_num_threads(before)
    with sqlite(tmp_path, "ray") as store:
        distributed = precompute(run_dir, store, serve_config, engine="ray", progress=False)
        meta = store.info(distributed.snapshot).meta
    digests["ray"] = distributed.digest
    assert meta["engine"] == "ray" and meta["threads"] == serve_config.threads and distributed.computed == 62
    assert len(set(digests.values())) == 1, digests


def test_the_thread_count_is_part_of_the_job(run_dir, tmp_path, serve_config):
    """A snapshot made at other threads is not taken for this job's (its last bits may differ)."""
    with sqlite(tmp_path) as store:
        first = precompute(run_dir, store, serve_config, progress=False)
        other = precompute(run_dir, store, serve_config.model_copy(update={"threads": 2}), progress=False)
    assert not other.skipped and other.snapshot != first.snapshot


def test_the_model_scores_at_serve_threads_whatever_the_process_runs_with(run_dir, tmp_path, serve_config,
                                                                          monkeypatch):
    """The mechanism behind equal digests: a spy model sees torch's thread count while it scores."""
    seen: list[int] = []

    class Spy(MostPop):
        def recommend(self, histories, k, exclude_history=True):
            seen.append(torch.get_num_threads())
            return super().recommend(histories, k)

    monkeypatch.setattr(catalog, "_CATALOG", dict(catalog._CATALOG))
    catalog.register_model(ModelEntry("spy", lambda run, ds, horizon: Spy.fit(ds)))
    before = torch.get_num_threads()
    try:
        for process_threads, serve_threads in ((2, 1), (1, 2)):
            torch.set_num_threads(process_threads)
            seen.clear()
            config = serve_config.model_copy(update={"model": "spy", "threads": serve_threads})
            with sqlite(tmp_path, f"spy{process_threads}") as store:
                precompute(run_dir, store, config, progress=False)
            assert set(seen) == {serve_threads} and torch.get_num_threads() == process_threads
    finally:
        torch.set_num_threads(before)
