"""``alignrec serve``: recommendations over HTTP (FastAPI), from the store's current snapshot.

A cached lookup is one store read and a list of titles: no model runs on that
path. The snapshot in use is one immutable object swapped by the admin reload,
so a request that started on the old snapshot finishes on it and none fails
during the switch. Every route lives under ``/v1`` or is an operations
endpoint; ``/`` is the web page (``alignrec/serve/page``: plain HTML and JS,
nothing fetched from elsewhere), which reads only the JSON endpoints.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from alignrec import __version__
from alignrec.catalog import load_recommender
from alignrec.config import ServeConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.errors import AlignrecError
from alignrec.models.mostpop import MostPop
from alignrec.recommender import Recommender
from alignrec.rundir import RunDir
from alignrec.serve import records
from alignrec.serve.explore import (
    ExploreInfo,
    Explorer,
    ItemDetail,
    ItemSummary,
    UserHistory,
    UserSummary,
    load_code_space,
)
from alignrec.serve.metrics import MetricsMiddleware, ServiceMetrics
from alignrec.serve.store import SnapshotStore, StoreError, open_store

API_KEY_ENV = "ALIGNREC_API_KEY"
API_KEY_HEADER = "X-API-Key"
MAX_HISTORY = 10_000
PAGE = Path(__file__).with_name("page")

log = logging.getLogger("alignrec.serve")


class Item(BaseModel):
    item_id: str
    title: str
    score: float
    rank: int


FallbackReason = Literal[
    "unknown_user", "short_history", "no_snapshot", "store_unavailable", "model_not_loaded", "timeout", "error"]


class Recommendations(BaseModel):
    user_id: str | None = Field(description="the original user id; null for a posted history")
    snapshot: str | None = Field(description="the snapshot in use when the request was answered")
    source: Literal["cache", "fallback", "live"] = Field(
        description="cache: pre-computed; live: computed now; fallback: the popularity list "
                    "(unknown user, too short a history, no snapshot, the store unreachable, "
                    "or the live model not loaded, too slow or failing)")
    reason: FallbackReason | None = Field(None, description="why the list is a fallback; null when it is not")
    items: list[Item]


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[str | int] = Field(max_length=MAX_HISTORY, description="original item ids, oldest first")
    k: int = Field(10, ge=1, description="how many items (at most the snapshot's K)")


class ReloadResult(BaseModel):
    previous: str | None
    snapshot: str
    changed: bool


@dataclass(frozen=True)
class ActiveSnapshot:
    """The snapshot requests read from; replaced whole on reload, never mutated."""

    id: str | None
    k: int
    meta: dict[str, Any] = field(default_factory=dict)


def _invalid(location: tuple[str | int, ...], message: str, value: Any, kind: str = "value_error") -> RequestValidationError:
    """A 422 in FastAPI's own error format."""
    return RequestValidationError([{"type": kind, "loc": location, "msg": message, "input": value}])


class ServeState:
    """What requests share: the run's items and users, the store, the active snapshot, the live model."""

    def __init__(
        self,
        run_dir: str | Path,
        store: SnapshotStore,
        config: ServeConfig,
        recommender: Recommender | None = None,
        model: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.store = store
        self.config = config
        self.dataset = SequenceDataset.load(RunDir(self.run_dir).data)
        self.item_ids: list[str] = [str(i) for i in self.dataset.item_ids]
        self.titles: list[str] = [self.dataset.title(i) for i in range(self.dataset.num_items)]
        self.item_index = self.dataset.item_index()
        self.user_index = self.dataset.user_index()
        self.popularity = MostPop.fit(self.dataset)
        self.explorer = Explorer(self.dataset, self.titles, self.popularity.counts,
                                 *load_code_space(self.run_dir, self.dataset))
        self.metrics = ServiceMetrics()
        self.store_down: str | None = None
        """The error of the lookup that began the store's current outage; None while it answers."""
        self.active = self._read_active()
        self.metrics.serving(None, self.active.id)
        self.model = model or self.active.meta.get("model") or config.model
        self.live: Recommender | None = recommender
        self.live_error: str | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alignrec-live")

    def _read_active(self) -> ActiveSnapshot:
        snapshot = self.store.current()
        if snapshot is None:
            return ActiveSnapshot(None, self.config.k)
        info = self.store.info(snapshot)
        if info.meta.get("format") != records.FORMAT:
            raise AlignrecError(
                f"{self.store.url}: snapshot {snapshot} stores lists in format {info.meta.get('format')}, "
                f"this alignrec reads {records.FORMAT}; run alignrec precompute again"
            )
        if info.meta.get("dataset") != self.dataset.fingerprint():
            raise AlignrecError(
                f"{self.store.url}: snapshot {snapshot} was computed from other data than {self.run_dir / 'data'}; "
                f"run `alignrec precompute --run {self.run_dir} --store {self.store.url}`"
            )
        return ActiveSnapshot(snapshot, int(info.meta["k"]), info.meta)

    def load_live(self) -> None:
        """Load the live model (slow for an LLM: runs in a thread; /readyz waits for it)."""
        if self.live is not None:
            return
        try:
            self.live = load_recommender(self.run_dir, self.model, self.dataset)
        except Exception as exc:  # reported by /readyz; cached lookups keep working
            log.exception("live model %s could not be loaded", self.model)
            self.live_error = f"{type(exc).__name__}: {exc}"
        # The ~200k long-lived objects of torch, the dataset and the model never become garbage:
        # out of the collector's sight, a full collection no longer stalls a request for ~70 ms.
        gc.freeze()

    def reload(self) -> ReloadResult:
        """Switch to the store's current snapshot (one reference swap)."""
        previous, latest = self.active, self._read_active()
        if latest.id is None:
            raise AlignrecError(f"{self.store.url} has no published snapshot; run alignrec precompute")
        self.active = latest
        changed = latest.id != previous.id
        if changed:
            self.metrics.reloads.inc()
            self.metrics.serving(previous.id, latest.id)
        return ReloadResult(previous=previous.id, snapshot=latest.id, changed=changed)

    def store_failed(self, error: StoreError) -> None:
        """Count a failed lookup; log only the first of an outage (while it lasts, every lookup fails)."""
        self.metrics.store_errors.inc()
        if self.store_down is None:
            log.warning("store lookups fail, users get the popularity list until it answers: %s", error)
            self.store_down = str(error)

    def store_answered(self) -> None:
        log.warning("the store answers again (it failed with: %s)", self.store_down)
        self.store_down = None

    def check_k(self, k: int, location: tuple[str, ...], active: ActiveSnapshot) -> None:
        if k > active.k:
            raise _invalid(location, f"Input should be less than or equal to {active.k}", k, "less_than_equal")

    def listing(self, items: Sequence[int], scores: Sequence[float], k: int) -> list[dict[str, Any]]:
        """Original ids and titles of the first ``k`` items (NO_ITEM pads dropped)."""
        ids, titles = self.item_ids, self.titles
        return [
            {"item_id": ids[i], "title": titles[i], "score": s, "rank": rank}
            for rank, (i, s) in enumerate(zip(items[:k], scores[:k], strict=True), 1)
            if i >= 0
        ]

    def fallback(self, history: np.ndarray, k: int) -> list[dict[str, Any]]:
        items, scores = self.popularity.recommend([history], k)
        return self.listing(items[0].tolist(), scores[0].tolist(), k)

    def user_history(self, user_id: str) -> np.ndarray:
        user = self.user_index.get(user_id)
        return self.dataset.sequence(user) if user is not None else np.empty(0, dtype=np.int64)


def _state(request: Request) -> ServeState:
    return request.app.state.serve


api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the admin API key")


def require_admin(
    key: Annotated[str | None, Depends(api_key_header)], state: Annotated[ServeState, Depends(_state)]
) -> None:
    """401 without a key, 403 with a wrong one (or when the server has none configured)."""
    if not key:
        raise HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": "ApiKey"})
    expected = os.environ.get(API_KEY_ENV) or state.config.api_key
    if not expected:
        raise HTTPException(403, f"admin endpoints are disabled: set {API_KEY_ENV} or serve.api_key")
    if not secrets.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(403, "wrong API key")


async def user_recommendations(
    user_id: str, request: Request, k: Annotated[int, Query(ge=1, description="at most the snapshot's K")] = 10
) -> Response:
    """The user's pre-computed top-k; the popularity list (``fallback``) if the snapshot has none
    or the store does not answer (never a 500: the service outlives its store).

    The hot path: the body is built from trusted parts and encoded by pydantic-core
    directly, skipping the response-model validation (its shape is tested).
    """
    state: ServeState = request.app.state.serve
    active = state.active
    state.check_k(k, ("query", "k"), active)
    value, reason = None, "no_snapshot"
    if active.id is not None:
        try:
            value = state.store.get(active.id, user_id)
            reason = "unknown_user"
        except StoreError as exc:
            state.store_failed(exc)
            reason = "store_unavailable"
        else:
            if state.store_down is not None:
                state.store_answered()
    if value is not None:
        cached = records.decode(value)
        source, reason = ("fallback", "short_history") if cached.fallback else ("cache", None)
        items = state.listing(cached.items, cached.scores, k)
    else:
        source = "fallback"
        items = state.fallback(state.user_history(user_id), k)
    state.metrics.served("user", source)
    body = {"user_id": user_id, "snapshot": active.id, "source": source, "reason": reason, "items": items}
    return Response(to_json(body), media_type="application/json")


async def history_recommendations(body: HistoryRequest, request: Request) -> dict[str, Any]:
    """Top-k for a posted history, computed live by the model within ``serve.live_timeout_s``, else the fallback."""
    state: ServeState = request.app.state.serve
    active = state.active
    state.check_k(body.k, ("body", "k"), active)
    original = [str(item) for item in body.history]
    unknown = [(i, item) for i, item in enumerate(original) if item not in state.item_index]
    if unknown:
        raise RequestValidationError([
            {"type": "unknown_item", "loc": ("body", "history", i), "msg": f"unknown item id {item!r}", "input": item}
            for i, item in unknown
        ])
    history = np.array([state.item_index[item] for item in original], dtype=np.int64)
    source, reason = "live", None
    live = state.live
    if len(history) < state.config.min_history:
        reason = "short_history"
    elif live is None:
        reason = "model_not_loaded"
    else:
        loop = asyncio.get_running_loop()
        try:
            found, scores = await asyncio.wait_for(
                loop.run_in_executor(state.executor, live.recommend, [history], body.k), state.config.live_timeout_s
            )
            items = state.listing(found[0].tolist(), scores[0].tolist(), body.k)
        except TimeoutError:
            reason = "timeout"
        except Exception:
            log.exception("live recommendation failed")
            reason = "error"
    if reason is not None:
        source = "fallback"
        state.metrics.live_failures.labels(reason).inc()
        items = state.fallback(history, body.k)
    state.metrics.served("history", source)
    return {"user_id": None, "snapshot": active.id, "source": source, "reason": reason, "items": items}


class ServiceInfo(ExploreInfo):
    snapshot: str | None
    k: int = Field(description="the largest k a request may ask for (the snapshot's K)")
    model: str = Field(description="the live model of POST /v1/recommendations")
    live: bool = Field(description="whether the live model is loaded")
    live_error: str | None = Field(description="why the live model could not be loaded, if it could not")


def service_info(state: Annotated[ServeState, Depends(_state)]) -> ServiceInfo:
    """The run, the snapshot and the live model: what the web page shows in its header."""
    active = state.active
    return ServiceInfo(**state.explorer.info().model_dump(), snapshot=active.id, k=active.k, model=state.model,
                       live=state.live is not None, live_error=state.live_error)


Search = Annotated[str, Query(max_length=200, description="part of an id (users) or of a title or id (items)")]
Limit = Annotated[int, Query(ge=1, le=100)]


def search_users(
    state: Annotated[ServeState, Depends(_state)], q: Search = "", limit: Limit = 20
) -> list[UserSummary]:
    """Users whose id matches ``q`` (exact, prefix, then substring; case-insensitive)."""
    return state.explorer.search_users(q, limit)


def user_history(user_id: str, state: Annotated[ServeState, Depends(_state)]) -> UserHistory:
    """The user's items, oldest first, with titles and codes; 404 for an unknown user."""
    found = state.explorer.history(user_id)
    if found is None:
        raise HTTPException(404, f"unknown user id {user_id!r}")
    return found


def search_items(
    state: Annotated[ServeState, Depends(_state)], q: Search = "", limit: Limit = 20
) -> list[ItemSummary]:
    """Items whose title (or id) matches ``q``, most interacted first."""
    return state.explorer.search_items(q, limit)


def item_detail(
    item_id: str, state: Annotated[ServeState, Depends(_state)],
    neighbours: Annotated[int, Query(ge=0, le=100, description="nearest items in code space")] = 10,
) -> ItemDetail:
    """An item's codes and its nearest items in code space (longest shared prefix, then distance)."""
    found = state.explorer.item(item_id, neighbours)
    if found is None:
        raise HTTPException(404, f"unknown item id {item_id!r}")
    return found


async def page() -> FileResponse:
    """The web page: explore users, items and recommendations."""
    return FileResponse(PAGE / "index.html", media_type="text/html")


def reload_snapshot(state: Annotated[ServeState, Depends(_state)]) -> ReloadResult:
    """Switch to the store's current snapshot; requests in flight finish on the old one."""
    try:
        return state.reload()
    except AlignrecError as exc:
        raise HTTPException(409, str(exc)) from None


async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def readyz(state: Annotated[ServeState, Depends(_state)], response: Response) -> dict[str, Any]:
    """Ready = the store answers, a snapshot is loaded and the live model is loaded."""
    problems = []
    try:
        state.store.current()
    except StoreError as exc:
        problems.append(str(exc))
    if state.active.id is None:
        problems.append("no published snapshot: run alignrec precompute, then POST /v1/admin/reload")
    if state.live is None:
        problems.append(f"live model {state.model}: " + (state.live_error or "loading"))
    response.status_code = 503 if problems else 200
    return {"ready": not problems, "snapshot": state.active.id, "model": state.model, "problems": problems}


def metrics(state: Annotated[ServeState, Depends(_state)]) -> Response:
    """Prometheus text format."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(state: ServeState) -> FastAPI:
    """The service; the live model loads in the background unless ``state`` already has one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        loader = threading.Thread(target=state.load_live, name="alignrec-load-model", daemon=True)
        loader.start()
        stop = threading.Event()
        if state.config.workers > 1:  # a reload request reaches one worker: each follows the store itself
            threading.Thread(target=follow_store, args=(state, stop), name="alignrec-follow", daemon=True).start()
        yield
        stop.set()
        state.executor.shutdown(wait=False, cancel_futures=True)

    # /docs and /redoc from files in the fastapi-offline wheel, not FastAPI's CDN: they work offline.
    app = FastAPIOffline(
        title="alignrec",
        version=__version__,
        description="Pre-computed top-K recommendations per user, live recommendations for a posted history.",
        lifespan=lifespan,
    )
    app.state.serve = state
    # Routes go on the app itself: an included APIRouter is matched through an extra layer on
    # every request (~15 us of ~150 us in-process, FastAPI 0.165).
    add = app.add_api_route
    add("/v1/users/{user_id}/recommendations", user_recommendations, methods=["GET"],
        response_model=Recommendations, tags=["recommendations"])
    add("/v1/recommendations", history_recommendations, methods=["POST"], response_model=Recommendations,
        tags=["recommendations"])
    add("/v1/info", service_info, methods=["GET"], response_model=ServiceInfo, tags=["explore"])
    add("/v1/users", search_users, methods=["GET"], response_model=list[UserSummary], tags=["explore"])
    add("/v1/users/{user_id}/history", user_history, methods=["GET"], response_model=UserHistory, tags=["explore"])
    add("/v1/items", search_items, methods=["GET"], response_model=list[ItemSummary], tags=["explore"])
    # :path: item ids may hold a slash (ML-1M's ids are titles, e.g. "Face/Off (1997)").
    add("/v1/items/{item_id:path}", item_detail, methods=["GET"], response_model=ItemDetail, tags=["explore"])
    add("/v1/admin/reload", reload_snapshot, methods=["POST"], response_model=ReloadResult, tags=["admin"],
        dependencies=[Depends(require_admin)])
    add("/healthz", healthz, methods=["GET"], tags=["operations"])
    add("/readyz", readyz, methods=["GET"], tags=["operations"])
    add("/metrics", metrics, methods=["GET"], tags=["operations"], response_class=Response)
    add("/", page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def follow_store(state: ServeState, stop: threading.Event) -> None:
    """Switch to the store's current snapshot whenever it changes, checking every ``serve.follow_s``."""
    while not stop.wait(state.config.follow_s):
        try:
            if state.store.current() not in (None, state.active.id):
                state.reload()
        except Exception as error:  # a store outage or a bad snapshot: keep serving the one in use
            log.warning("following the store: %s", error)


WORKER_SPEC = "ALIGNREC_SERVE_WORKER"
"""The environment variable through which :func:`serve` tells each worker process what to serve."""


def worker_app() -> FastAPI:
    """uvicorn's app factory in a worker process: the service that :func:`serve` described."""
    spec = json.loads(os.environ[WORKER_SPEC])
    config = ServeConfig(**spec["config"])
    return create_app(ServeState(spec["run"], open_store(spec["store"]), config, model=spec["model"]))


def serve(state: ServeState, host: str, port: int) -> None:
    """Run the service with uvicorn until interrupted: in this process, or in ``serve.workers`` processes
    that each build the same service (``state`` has been checked here first)."""
    import uvicorn

    options = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    if state.config.workers == 1:
        uvicorn.run(create_app(state), **options)
        return
    os.environ[WORKER_SPEC] = json.dumps({"run": str(state.run_dir), "store": state.store.url,
                                         "config": state.config.model_dump(), "model": state.model})
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=state.config.workers, **options)
