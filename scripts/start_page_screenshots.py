"""Screenshots of each role's start page from a running app, for reviews and release notes.

    ./run.sh --port 5077 &                                   # the demo users, on an empty instance
    .venv/bin/flask --app ppt_web generate-data --clients 60  # (from the same folder) a service's work
    .venv/bin/python scripts/start_page_screenshots.py --url http://127.0.0.1:5077 --out test-artifacts

Signs in through the real form as the handler, the secretary, the consultant and the leader (the demo
users' password), and saves start-<username>.png (the whole page) in --out. Needs Chromium
(apt-get install chromium) and the dev dependencies (Playwright).
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ROLES = ("radgjevar1", "sekretaer", "konsulent", "leiar")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--out", default="test-artifacts")
    parser.add_argument("--password", default=os.environ.get("PPT_DEMO_PASSWORD", "demo-passord"))
    args = parser.parse_args()
    chromium = os.environ.get("PPT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on this machine: apt-get install chromium")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        for username in ROLES:
            page = browser.new_page(base_url=args.url, viewport={"width": 1280, "height": 900}, locale="nn-NO")
            page.goto("/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", args.password)
            page.locator("form button[type=submit]").first.click()
            page.wait_for_load_state("networkidle")
            if page.url.rstrip("/").endswith("/login"):
                raise SystemExit(f"{username} could not sign in at {args.url}")
            page.goto("/")
            path = out / f"start-{username}.png"
            page.screenshot(path=str(path), full_page=True)
            print(path)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
