"""The search page, query by query, on a large instance: latency, SQL statements and time, what it finds.

    .venv/bin/python bench/bigdata.py --instance /tmp/big-sqlite --clients 20000   # once, ten years
    .venv/bin/python bench/search.py --instance /tmp/big-sqlite [--requests 20]
    .venv/bin/python bench/search.py --instance /tmp/big-pg --database-url postgresql+psycopg://...

Signs in as a handler (search_own: own and co-handled cases) and as the consultant (search_all)
and POSTs each query as the live search does (htmx, the results fragment). Prints, per query and
user, p50/p95 in ms, SQL statements and SQL ms per request, and the counts shown (clients / cases /
posts, "501" meaning "500+"), then the baseline of the same run: the bare Flask page of
bench/load.py rendering the same number of bytes. Queries: prefixes (what search always
matched), words in the middle of titles and names, a case number's sequence part, a common word.

    --statements   also print, per query and user, each statement of the last request (ms, first words)
    --profile N    also profile the search view alone (not the request path around it) over all queries,
                   and print its N costliest functions by cumulative time
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FIXED = ["tilvising", "sakkunnig", "pedagogisk", "emma", "nora h", "spesialundervisning", "vurdering spes",
         "føresette", "frå", "rapport", "wisc", "hansen", "dimna"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True, help="an instance with data (bench/bigdata.py)")
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--requests", type=int, default=20, help="per query and user")
    parser.add_argument("--queries", default="", help="comma-separated queries instead of the fixed ones")
    parser.add_argument("--statements", action="store_true", help="print the statements of each query's request")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile the view; print N functions")
    args = parser.parse_args()

    instance = Path(args.instance).resolve()
    url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ["PPT_INSTANCE_PATH"] = str(instance)
    import logging

    import load
    from common import pct
    from flask_migrate import upgrade
    from sqlalchemy import event, func, select, text

    from ppt_web import create_app
    from ppt_web.cli import DEMO_PASSWORD, seed_demo_users
    from ppt_web.extensions import db
    from ppt_web.models import Case, JournalPost

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False,
                      "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "bench"})
    logging.getLogger("ppt.access").setLevel(logging.WARNING)  # a line per request is not what is measured
    with app.app_context():
        started = time.monotonic()
        upgrade()
        print(f"migrations: {time.monotonic() - started:.1f} s")
        seed_demo_users()
        posts = db.session.scalar(select(func.count()).select_from(JournalPost))
        newest = db.session.scalar(select(Case.number).order_by(Case.id.desc()).limit(1))
        own = db.session.scalar(text(
            'SELECT c.number FROM "case" c JOIN "user" u ON u.id = c.handler_id WHERE u.username = :u '
            "ORDER BY c.id DESC LIMIT 1"), {"u": "radgjevar1"})
        engine = db.engine
    queries = [q for q in args.queries.split(",") if q] or \
        FIXED + [str(newest).split("/")[1], str(own).split("/")[1][-3:], str(newest)[:6]]
    print(f"{posts} posts ({engine.dialect.name}); case number queries from {newest} and {own}")

    statements: list[float] = []
    texts: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        statements.append(time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter()))
        texts.append(" ".join(statement.split()))

    profiler = None
    if args.profile:  # the view alone: what the search itself costs, whatever the request path around it does
        import cProfile
        import functools
        import pstats

        profiler = cProfile.Profile()
        view = app.view_functions["search.search"]

        @functools.wraps(view)
        def profiled(*a, **kw):
            return profiler.runcall(view, *a, **kw)

        app.view_functions["search.search"] = profiled

    hx = {"HX-Request": "true", "HX-Target": "search-results"}
    all_samples: dict[str, list[float]] = {}
    sizes = []
    print(f"{'query':22s} {'user':11s} {'p50':>7s} {'p95':>7s} {'queries':>7s} {'SQL ms':>7s}  found")
    for user in ("radgjevar1", "konsulent"):
        client = app.test_client()
        assert client.post("/login", data={"username": user, "password": DEMO_PASSWORD}).status_code == 302
        for q in queries:
            samples, counts, sql = [], [], []
            html = ""
            for n in range(args.requests + 1):
                statements.clear()
                texts.clear()
                t0 = time.perf_counter()
                response = client.post("/search/", data={"q": q}, headers=hx)
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, (q, response.status_code)
                html = response.get_data(as_text=True)
                if n == 0:
                    continue  # warm-up
                samples.append(elapsed * 1000)
                counts.append(len(statements))
                sql.append(sum(statements) * 1000)
                sizes.append(len(html))
            all_samples.setdefault(user, []).extend(samples)
            found = "/".join(re.findall(r"\((\d+\+?)\)</small>", html)) or "-"
            print(f"{q:22s} {user:11s} {pct(samples, .5):7.1f} {pct(samples, .95):7.1f} {statistics.mean(counts):7.1f} "
                  f"{statistics.mean(sql):7.1f}  {found}", flush=True)
            if args.statements:
                for spent, sql_text in zip(statements, texts, strict=True):
                    print(f"    {spent * 1000:7.2f} ms  {sql_text[:150]}")
    for user, samples in all_samples.items():
        print(f"{'all queries':22s} {user:11s} {pct(samples, .5):7.1f} {pct(samples, .95):7.1f}")
    if profiler is not None:
        stats = pstats.Stats(profiler)
        # The view's own entry: the largest cumulative time, with its number of calls (warm-ups included).
        calls, spent = max((entry[3], entry[1]) for entry in stats.stats.values())[::-1]  # type: ignore[attr-defined]
        print(f"the search view alone: {spent * 1000 / calls:.2f} ms per request (profiled, {calls} requests)")
        stats.sort_stats("cumulative").print_stats(args.profile)
    size = round(statistics.mean(sizes))
    bare = load.bare_app().test_client()
    bare_samples = []
    for _ in range(200):
        t0 = time.perf_counter()
        bare.get(f"/{size}")
        bare_samples.append((time.perf_counter() - t0) * 1000)
    print(f"baseline: bare Flask page of {size} bytes p50 {pct(bare_samples, .5):.2f} ms; "
          f"latencies in ms, in-process, one thread; instance: {instance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
