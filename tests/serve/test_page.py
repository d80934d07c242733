"""The web page in a real browser: Debian's headless Chromium driven by Playwright against a live server.

Skipped only where Chromium or Playwright is missing; CI sets ALIGNREC_REQUIRE_BROWSER=1
(.ci/run installs both), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from alignrec.catalog import load_recommender
from alignrec.config import ServeConfig
from alignrec.data.dataset import SequenceDataset
from alignrec.serve.app import ServeState, create_app
from alignrec.serve.precompute import precompute
from alignrec.serve.store import open_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("ALIGNREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
REQUIRE_ENV = "ALIGNREC_REQUIRE_BROWSER"
WAIT_MS = 20_000
"""How long an expectation waits: a loaded CI machine answers a click in seconds, not Playwright's default 5."""


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python playwright not installed (pip install playwright; it uses Debian's chromium, no download)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = _missing()
    if missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@contextmanager
def serving(run: Path, store_path: Path, serve_config: ServeConfig) -> Iterator[str]:
    """Precompute SASRec's lists into SQLite and serve the run on a free loopback port."""
    store = open_store(f"sqlite:{store_path}")
    precompute(run, store, serve_config.model_copy(update={"min_history": 2}), progress=False)
    state = ServeState(run, store, serve_config, recommender=load_recommender(run, "sasrec", SequenceDataset.load(run / "data")))
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join()
        store.close()


@pytest.fixture
def page_of(browser: Browser) -> Iterator[Callable[[str], tuple[Page, list[str]]]]:
    """Open the page at a base URL; every request must stay on that server, no page error allowed."""
    opened = []

    def open_page(base: str) -> tuple[Page, list[str]]:
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
        page.on("request", lambda request: request.url.startswith(base) or problems.append(f"left: {request.url}"))
        page.goto(base)
        page.wait_for_selector("#status:has-text('ready')")
        opened.append((page, problems))
        return page, problems

    yield open_page
    for page, _ in opened:
        page.close()


def search(page: Page, box: str, results: str, query: str) -> None:
    """Type a query and wait until every listed result matches it: clicking the list the page showed before
    the (debounced) search answered would race its replacement."""
    from playwright.sync_api import expect

    page.fill(box, query)
    expect(page.locator(results).first).to_contain_text(query)
    expect(page.locator(results).filter(has_not_text=query)).to_have_count(0)


def test_pick_a_user_see_titles_and_codes_post_a_history(page_of, coded_run, tmp_path, serve_config) -> None:
    from playwright.sync_api import expect

    with serving(coded_run, tmp_path / "store.sqlite", serve_config) as base:
        page, problems = page_of(base)
        expect(page.locator("#run-info")).to_contain_text("toy: 62 users, 30 items")
        expect(page.locator("#codes-note")).to_be_hidden()

        # pick a user: the history in order, with codes; the cached top-10 with titles
        search(page, "#user-search", "#user-results li", "u12")
        page.click("button[data-user='u12']")
        recs = page.locator("#recs tbody tr")
        try:
            expect(recs).to_have_count(10)
        except AssertionError as error:  # say what the page said, e.g. a failed request
            raise AssertionError(f"{error}\npage status: {page.inner_text('#status')!r}") from None
        expect(page.locator("#recs-source")).to_have_text("cache")
        titles = page.locator("#recs tbody .item-link").all_inner_texts()
        assert all(title.startswith("Film ") for title in titles)
        history = page.locator("#history tbody .item-link").all_inner_texts()
        assert history and history[0].startswith("Film ")
        expect(page.locator("#history tbody tr").first.locator(".code")).to_have_count(2)

        # click a recommended item: its codes and nearest items in code space
        page.locator("#recs tbody .item-link").first.click()
        expect(page.locator("#item-title")).to_have_text(titles[0])
        expect(page.locator("#item-codes .code")).to_have_count(2)
        expect(page.locator("#neighbours tbody tr")).to_have_count(10)
        prefixes = [int(p) for p in page.locator("#neighbours tbody td:first-child").all_inner_texts()]
        assert prefixes == sorted(prefixes, reverse=True)

        # an ad-hoc history from the item search, recommended live
        for query in ("Film 4", "Film 5", "Film 6"):
            search(page, "#item-search", "#item-results li", query)
            page.locator("#item-results li", has_text=query).first.locator("button.add").click()
        expect(page.locator("#basket li")).to_have_count(3)
        page.click("#recommend")
        expect(page.locator("#adhoc-source")).to_have_text("live")
        expect(page.locator("#adhoc-recs tbody tr")).to_have_count(10)
        live = page.locator("#adhoc-recs tbody .item-link").all_inner_texts()
        assert all(t.startswith("Film ") for t in live) and not {"Film 4", "Film 5", "Film 6"} & set(live)

        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not problems, problems


def test_a_run_without_tokens_says_codes_are_unavailable(page_of, run_dir, tmp_path, serve_config) -> None:
    from playwright.sync_api import expect

    with serving(run_dir, tmp_path / "store.sqlite", serve_config) as base:
        page, problems = page_of(base)
        expect(page.locator("#codes-note")).to_contain_text("codes unavailable")
        page.click("button[data-user='u0']")
        expect(page.locator("#recs tbody tr")).to_have_count(10)
        expect(page.locator("#history tbody tr").first).to_contain_text("n/a")
        page.locator("#history tbody .item-link").first.click()
        expect(page.locator("#neighbours-note")).to_contain_text("codes unavailable")
        assert not problems, problems


def test_api_docs_render_offline(browser, run_dir, tmp_path, serve_config) -> None:
    """Swagger UI draws every endpoint with no request leaving the server (the CI machine has no CDN)."""
    from playwright.sync_api import expect

    with serving(run_dir, tmp_path / "store.sqlite", serve_config) as base:
        page = browser.new_page()
        left: list[str] = []
        page.on("request", lambda request: request.url.startswith(base) or left.append(request.url))
        page.on("pageerror", lambda error: left.append(f"page error: {error}"))
        page.goto(base + "docs")
        expect(page.locator(".opblock-summary-path", has_text="/v1/users/{user_id}/recommendations")).to_be_visible()
        assert page.locator(".opblock").count() >= 10
        page.close()
        assert not left
