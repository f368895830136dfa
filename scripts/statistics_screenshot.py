"""A screenshot of the statistics page (and its print view) on generated data, for reviews and release notes.

    .venv/bin/python scripts/statistics_screenshot.py --out test-artifacts              # its own data
    .venv/bin/python scripts/statistics_screenshot.py --clients 120 --seed 19 --year 2025
    .venv/bin/python scripts/statistics_screenshot.py --url http://127.0.0.1:5077       # a running app

Without --url it makes a throwaway SQLite instance, fills it with generate-data (--clients, --seed:
through the services, as `flask generate-data` does; cases spread over the last three years) and
serves it on loopback in a thread. Signs in through the real form as the leader (leiar, the demo
users' password), opens the statistics page from the menu and saves statistics.png (the whole page)
and statistics-print.png (the print view, rendered as for print on A4's width) in --out. --year picks
a year instead of the page's default (the current year so far). Needs Chromium (apt-get install
chromium) and the dev dependencies (Playwright).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from flask_migrate import upgrade
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ppt_web import create_app  # noqa: E402  (after the path)
from ppt_web.cli import seed_demo_users  # noqa: E402
from ppt_web.extensions import db  # noqa: E402
from ppt_web.generate import generate  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def serve_generated(clients: int, seed: int):
    """A fresh instance with generated data, served on a free loopback port: (url, stop)."""
    instance = Path(tempfile.mkdtemp(prefix="ppt-statistics-shot-"))
    os.environ.pop("PPT_DATABASE_URL", None)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'ppt.sqlite'}", "INSTANCE_PATH": str(instance),
                      "SECRET_KEY": "statistics-screenshot", "PPT_REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        upgrade()
        seed_demo_users()
        print(f"generate-data --clients {clients} --seed {seed}: {generate(clients, seed, echo=lambda *a: None)}")
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(5)
        shutil.rmtree(instance, ignore_errors=True)
    return f"http://127.0.0.1:{server.server_port}", stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="a running app (default: make one with generated data)")
    parser.add_argument("--clients", type=int, default=80)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--year", type=int, default=None, help="the period (default: the page's own default)")
    parser.add_argument("--out", default="test-artifacts")
    parser.add_argument("--password", default=os.environ.get("PPT_DEMO_PASSWORD", "demo-passord"))
    args = parser.parse_args()
    chromium = os.environ.get("PPT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on this machine: apt-get install chromium")
    url, stop = (args.url, lambda: None) if args.url else serve_generated(args.clients, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    query = f"?period=year&year={args.year}" if args.year else ""
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
            page = browser.new_page(base_url=url, viewport={"width": 1280, "height": 900}, locale="nn-NO")
            page.goto("/login")
            page.fill("input[name=username]", "leiar")
            page.fill("input[name=password]", args.password)
            page.locator("form button[type=submit]").first.click()
            page.wait_for_load_state("networkidle")
            if page.url.rstrip("/").endswith("/login"):
                raise SystemExit(f"leiar could not sign in at {url}")
            page.locator("nav a[href$='/statistics/']").first.click()  # from the menu, as a leader would
            page.wait_for_load_state("networkidle")
            if query:
                page.goto(f"/statistics/{query}")
            path = out / "statistics.png"
            page.screenshot(path=str(path), full_page=True)
            print(path)
            page.goto(f"/statistics/print{query}")
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            path = out / "statistics-print.png"
            page.screenshot(path=str(path), full_page=True)
            print(path)
            browser.close()
    finally:
        stop()


if __name__ == "__main__":
    main()
