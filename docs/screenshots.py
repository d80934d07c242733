"""Take the README's screenshots: the page of a running `alignrec serve`, and a run's report.html.

    alignrec serve --run RUN --store sqlite:RUN/store.sqlite --model llm --port 8765 &
    python docs/screenshots.py --url http://127.0.0.1:8765/ --report RUN/report.html \
        --user 13 --history "Star Wars" "Empire Strikes Back" "Return of the Jedi"

Debian's chromium driven by Playwright, as in tests/serve/test_page.py; nothing is downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the page of a running alignrec serve")
    parser.add_argument("--report", required=True, type=Path, help="a report.html written by alignrec report")
    parser.add_argument("--user", required=True, help="the user shown in the user view")
    parser.add_argument("--history", nargs="+", required=True, help="titles searched and added to the ad-hoc history")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder for the PNGs (docs/)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 940})
        page.goto(args.url)
        page.wait_for_selector("#status:has-text('ready')", timeout=60_000)

        page.fill("#user-search", args.user)
        page.click(f"button[data-user='{args.user}']")
        expect(page.locator("#recs tbody tr")).to_have_count(10)
        page.screenshot(path=str(args.out / "page-user.png"))

        page.locator("#recs tbody .item-link").first.click()
        expect(page.locator("#neighbours tbody tr")).to_have_count(10)
        page.screenshot(path=str(args.out / "page-item.png"))

        for title in args.history:
            page.fill("#item-search", title)
            page.locator("#item-results li", has_text=title).first.locator("button.add").click()
        page.click("#recommend")
        expect(page.locator("#adhoc-recs tbody tr")).to_have_count(10, timeout=120_000)
        page.screenshot(path=str(args.out / "page-adhoc.png"), full_page=True)

        report = browser.new_page(viewport={"width": 1100, "height": 900})
        report.goto(args.report.resolve().as_uri())
        report.screenshot(path=str(args.out / "report.png"), full_page=True)
        browser.close()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
