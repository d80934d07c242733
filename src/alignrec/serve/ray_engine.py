"""``--engine ray``: shards computed by a pool of Ray actors, each loading the model once.

Ray Data streams the pending shards through ``map_batches`` over an actor pool;
the driver receives each finished shard and commits it to the store, so the
store needs no access from the workers and checkpointing is the same as the
local engine's. Each actor reserves ``serve.threads`` CPUs and scores with that
many threads, as the local engine does (see ``alignrec.serve.lists``), so both
write the same bytes. Workers read the run directory themselves: on a multi-node
cluster it must be on storage every node sees, at the same path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import ray
import ray.data

from alignrec.catalog import load_recommender
from alignrec.config import ServeConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.rundir import RunDir
from alignrec.serve.lists import ListMaker, Shard


class ShardWorker:
    """One actor: loads the dataset and the model in its constructor, then makes lists shard by shard."""

    def __init__(self, run_dir: str, model: str, k: int, min_history: int, threads: int) -> None:
        dataset = SequenceDataset.load(RunDir(run_dir).data)
        self.maker = ListMaker(dataset, load_recommender(run_dir, model, dataset), k, min_history, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        users, values = [], []
        for shard_users in batch["users"]:
            made = self.maker(np.asarray(shard_users, dtype=np.int64))
            users.append([user for user, _ in made])
            values.append([value for _, value in made])
        return {"shard": batch["shard"], "user": _objects(users), "value": _objects(values)}


def _objects(rows: list[list]) -> np.ndarray:
    """A 1-d object array of lists (numpy would otherwise try to build a 2-d array)."""
    array = np.empty(len(rows), dtype=object)
    array[:] = rows
    return array


def ray_engine(
    run_dir: Path, config: ServeConfig, shards: list[np.ndarray], pending: list[int], address: str | None
) -> Iterator[Shard]:
    """Yield finished shards (in completion order); connects to ``address`` or starts a local cluster."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver's own bar counts committed users
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if config.threads > cpus:
            raise AlignrecError(f"serve.threads={config.threads}: the Ray cluster has {cpus} CPUs; "
                                "an actor cannot reserve more, lower serve.threads")
        actors = config.ray_actors or max(cpus // config.threads, 1)
        actors = min(actors, len(pending))
        items = [{"shard": shard, "users": shards[shard].tolist()} for shard in pending]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardWorker,
            fn_constructor_kwargs={"run_dir": str(run_dir), "model": config.model, "k": config.k,
                                   "min_history": config.min_history, "threads": config.threads},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=config.threads,
        )
        for batch in dataset.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=2):
            for shard, users, values in zip(batch["shard"], batch["user"], batch["value"], strict=True):
                yield int(shard), list(zip((str(u) for u in users), (bytes(v) for v in values), strict=True))
    finally:
        if started_here:
            ray.shutdown()
