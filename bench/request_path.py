"""The request path: what a signed-in page costs beyond its own rows, and the garbage collector's pauses.

    .venv/bin/python bench/request_path.py --instance /tmp/big19-sqlite [--database-url URL] [--requests 300]
    .venv/bin/python bench/request_path.py --instance /tmp/big19-sqlite --gc 2000 [--page /profile]
    .venv/bin/python bench/request_path.py --instance /tmp/big19-sqlite --layout [--ab] [--profile 500]

In-process, one thread, Flask's test client (as bench/pages.py), on an instance that already has data
(no migration, no seeding: the demo users must be there). The first form prints, for a few small
signed-in pages, p50/p95/p99, the SQL statements per request and how many of them read the users'
tables (user, user_session, role, permissions, teams). The second serves one page N times and prints the
full (generation 2) collections seen, their pauses, p50/p99 of the page and the process's RSS before and
after. Copy it into an older checkout's bench/ to get "before" figures from the same script.

--layout adds the layout alone, first: a page made only inside this bench (a template that extends base.html
with one paragraph, on a route added to the bench's app, as leiar), timed beside an empty page of a bare
Flask app, so the difference is what the signed-in layout and request path cost. --profile N runs that
page (or --page) N times under cProfile and prints where the time went.
"""
from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The tables that say who is signed in and what they may do.
AUTH_TABLES = re.compile(r'\b(FROM|JOIN)\s+"?(user|user_session|role|user_role|role_permission|permission|'
                         r'access_group|group_member|group_role)"?(\s|$)', re.IGNORECASE)
PAGES = [  # (user, path, marker)
    ("radgjevar1", "/profile", 'name="locale"'),
    ("sekretaer", "/profile", 'name="locale"'),
    ("leiar", "/approvals", "approvals"),
    ("sekretaer", "/post-registration/", 'id="inbox-rows"'),
]
LAYOUT_PAGE = ("leiar", "/_bench/layout", 'id="bench-layout"')
LAYOUT_TEMPLATE = '{% extends "base.html" %}{% block content %}<p id="bench-layout">{{ _("None") }}</p>{% endblock %}'


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--requests", type=int, default=300, help="per page")
    parser.add_argument("--gc", type=int, default=0, metavar="N", help="serve one page N times; report GC pauses")
    parser.add_argument("--page", default="/profile", help="the page of --gc")
    parser.add_argument("--user", default="radgjevar1", help="the user of --gc")
    parser.add_argument("--ab", action="store_true",
                        help="alternate requests with the per-process caches off and on (this checkout only)")
    parser.add_argument("--off", default="user,counts,context,layout",
                        help="with --ab: which caches the 'off' requests go without (user, counts, context, "
                             "layout: the header's HTML and the CSRF token kept per session)")
    parser.add_argument("--layout", action="store_true",
                        help="time the layout alone (a bench-only page) beside a bare Flask page")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile N requests of --page as --user (or of the layout page with --layout)")
    parser.add_argument("--threshold", default="", help="a,b,c: gc.set_threshold after start (to compare)")
    parser.add_argument("--unfreeze", action="store_true", help="gc.unfreeze() after start (to compare)")
    args = parser.parse_args()
    instance = Path(args.instance).resolve()
    url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ["PPT_INSTANCE_PATH"] = str(instance)

    from common import statement_timer

    from ppt_web import create_app
    from ppt_web.cli import DEMO_PASSWORD
    from ppt_web.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False,
                      "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "bench"})
    pages = list(PAGES)
    if args.layout:
        add_layout_page(app)
        pages = [LAYOUT_PAGE, *PAGES]
    with app.app_context():
        engine = db.engine
    statements = statement_timer(engine)
    clients = {}

    def browser(username: str):
        if username not in clients:
            c = app.test_client()
            assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
            clients[username] = c
        return clients[username]

    if args.unfreeze:
        gc.unfreeze()
    if args.threshold:
        gc.set_threshold(*(int(x) for x in args.threshold.split(",")))
    print(f"engine: {engine.dialect.name}; gc threshold {gc.get_threshold()}, frozen {gc.get_freeze_count()}")
    if args.profile:
        user, page = (LAYOUT_PAGE[0], LAYOUT_PAGE[1]) if args.layout else (args.user, args.page)
        return profile_run(args, browser(user), page)
    if args.gc:
        return gc_run(args, browser(args.user), statements)
    if args.ab:
        return ab_run(args, app, browser, statements, pages)
    print(f"{'user':11s} {'page':22s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'queries':>7s} {'on users':>8s}")
    for username, path, marker in pages:
        c = browser(username)
        samples, queries, auth = [], [], []
        for n in range(args.requests + 3):
            statements.clear()
            t0 = time.perf_counter()
            response = c.get(path)
            elapsed = time.perf_counter() - t0
            assert response.status_code == 200 and marker in response.get_data(as_text=True), (path, response.status)
            if n < 3:
                continue
            samples.append(elapsed)
            queries.append(len(statements))
            auth.append(sum(1 for _, s in statements if AUTH_TABLES.search(s)))
        print(f"{username:11s} {path:22s} {ms(samples, .5):6.2f} {ms(samples, .95):6.2f} {ms(samples, .99):6.2f} "
              f"{statistics.mean(queries):7.1f} {statistics.mean(auth):8.1f}", flush=True)
    if args.layout:
        bare_run(args)
    print("latencies in ms, in-process, one thread")
    return 0


def add_layout_page(app) -> None:
    """The bench's own page: the signed-in layout around one paragraph (no route of the app does this)."""
    from flask import render_template

    template = app.jinja_env.from_string(LAYOUT_TEMPLATE)  # compiled once, as a template file would be
    app.add_url_rule(LAYOUT_PAGE[1], "bench_layout", lambda: render_template(template))


def bare_run(args) -> None:
    """An empty page of a bare Flask app (the framework's own cost), for comparison."""
    from flask import Flask, render_template

    bare = Flask("bare")
    template = bare.jinja_env.from_string("<!doctype html><title>{{ title }}</title><p>{{ title }}</p>")
    bare.add_url_rule("/", "empty", lambda: render_template(template, title="Side"))
    c = bare.test_client()
    samples = []
    for n in range(args.requests + 3):
        t0 = time.perf_counter()
        c.get("/")
        if n >= 3:
            samples.append(time.perf_counter() - t0)
    print(f"{'(bare)':11s} {'an empty Flask page':22s} {ms(samples, .5):6.2f} {ms(samples, .95):6.2f} "
          f"{ms(samples, .99):6.2f}")


def profile_run(args, client, page: str) -> int:
    import cProfile
    import pstats

    for _ in range(20):  # warm-up: templates, statements, caches
        assert client.get(page).status_code == 200
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.profile):
        client.get(page)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    return 0


def ab_run(args, app, browser, statements, pages) -> int:
    """Each page's requests alternate: the caches off (every entry too old: read again, as before them),
    then on. Same process, same moment: the machine's load falls on both alike."""
    from ppt_web import i18n

    kept = app.extensions["ppt_caches"]
    seconds = kept.user_seconds, kept.count_seconds
    layout = getattr(kept, "layout_on", None)  # the header's HTML and the CSRF token (not in older checkouts)
    print(f"off: without {args.off}")
    print(f"{'user':11s} {'page':22s} {'off p50':>7s} {'on p50':>7s} {'off p95':>7s} {'on p95':>7s} "
          f"{'off q':>5s} {'on q':>5s}")
    for username, path, marker in pages:
        c = browser(username)
        samples: dict[bool, list[float]] = {False: [], True: []}
        queries: dict[bool, list[int]] = {False: [], True: []}
        for n in range(2 * args.requests + 6):
            on = n % 2 == 1
            off = set() if on else set(args.off.split(","))
            kept.user_seconds = -1.0 if "user" in off else seconds[0]
            kept.count_seconds = -1.0 if "counts" in off else seconds[1]
            if "context" in off:
                i18n._contexts.clear()
            if layout is not None:
                kept.layout_on = "layout" not in off
            statements.clear()
            t0 = time.perf_counter()
            response = c.get(path)
            elapsed = time.perf_counter() - t0
            assert response.status_code == 200 and marker in response.get_data(as_text=True), (path, response.status)
            if n < 6:
                continue
            samples[on].append(elapsed)
            queries[on].append(len(statements))
        print(f"{username:11s} {path:22s} {ms(samples[False], .5):7.2f} {ms(samples[True], .5):7.2f} "
              f"{ms(samples[False], .95):7.2f} {ms(samples[True], .95):7.2f} "
              f"{statistics.mean(queries[False]):5.1f} {statistics.mean(queries[True]):5.1f}", flush=True)
    kept.user_seconds, kept.count_seconds = seconds
    if layout is not None:
        kept.layout_on = layout
    return 0


def gc_run(args, client, statements) -> int:
    pauses: list[float] = []
    started = [0.0]

    def watch(phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    for _ in range(20):  # warm-up: templates, statements, caches
        client.get(args.page)
    before = rss()
    gc.callbacks.append(watch)
    samples = []
    for _ in range(args.gc):
        statements.clear()
        t0 = time.perf_counter()
        response = client.get(args.page)
        samples.append(time.perf_counter() - t0)
        assert response.status_code == 200
    gc.callbacks.remove(watch)
    after = rss()
    t0 = time.perf_counter()
    gc.collect()
    forced = time.perf_counter() - t0
    total = ", ".join(f"{p * 1000:.0f}" for p in sorted(pauses)[-5:])
    print(f"{args.page} x {args.gc}: p50 {ms(samples, .5):.2f} ms, p99 {ms(samples, .99):.2f} ms, "
          f"max {max(samples) * 1000:.1f} ms; full collections {len(pauses)} "
          f"(longest ms: {total or '-'}); RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB; "
          f"a full collection now: {forced * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
