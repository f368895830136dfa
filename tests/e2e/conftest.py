"""Browser tests: the real app served on loopback, driven by Debian's Chromium via Playwright."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str | None:
    return os.environ.get("PPT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (apt-get install chromium): browser tests cannot be skipped there")
        pytest.skip("no chromium on this machine: apt-get install chromium (CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app):
    """The test app on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="nn-NO")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    yield page
    context.close()


def sign_in(page, username: str) -> None:
    """Through the real sign-in form, as a person would."""
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Brukarnamn").fill(username)
    page.get_by_label("Passord").fill("demo-passord")
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("header .user")).to_be_visible()


def start_worker(app, **settings):
    """A real worker.py on the test app's database, Redis and queue; its log goes to instance/worker.log."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers import ROOT, worker_env

    env = {**worker_env(app), **{key: str(value) for key, value in settings.items()}}
    log = Path(app.instance_path) / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log.open("a"))
    proc.log_path = log
    return proc


def stop_worker(proc) -> None:
    """SIGTERM (a warm shutdown finishes the job in hand); a worker still busy after 30 s is killed,
    so one slow job cannot turn a test's result into a teardown error. Its log says what it did."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        print("worker did not stop in 30 s; the end of its log:\n" + proc.log_path.read_text()[-3000:])
