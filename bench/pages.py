"""The pages of bench/load.py in-process, one thread: latency, queries per request and time in SQL.

    .venv/bin/python bench/pages.py [--clients 1000] [--seed 1] [--requests 200] [--instance DIR]
    .venv/bin/python bench/pages.py --instance /tmp/big --database-url postgresql+psycopg://...  [--pages search]

Makes a fresh instance (SQLite) unless --instance points at one that has data (bench/bigdata.py
makes large ones fast), fills it with `generate-data` if it is empty, then times requests with
Flask's test client (one thread: the app's own cost, without a network or a WSGI server) and prints
p50/p95/p99 per page, the number of SQL statements per request and the time spent in them, next to
the bare Flask page of load.py rendering the same number of bytes. The statement count is what
finds N+1 loads; the SQL time is what finds a missing index.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    from common import pct

    ms = [s * 1000 for s in samples]
    return pct(ms, .50), pct(ms, .95), pct(ms, .99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="for generate-data, when the instance is empty")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--instance", default=None)
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--pages", default="", help="comma-separated parts of page names (default: all)")
    parser.add_argument("--top", type=int, default=0,
                        help="also print the N statements that took the most time per page")
    args = parser.parse_args()

    instance = Path(args.instance or tempfile.mkdtemp(prefix="ppt-bench-")).resolve()
    args.instance = str(instance)
    args.database_url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ["PPT_INSTANCE_PATH"] = str(instance)
    import load
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from ppt_web import create_app
    from ppt_web.cli import DEMO_PASSWORD, seed_demo_users
    from ppt_web.extensions import db
    from ppt_web.generate import generate
    from ppt_web.models import ArchiveJob, Case, Client, JournalPost

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "INSTANCE_PATH": str(instance),
                      "WTF_CSRF_ENABLED": False, "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        seed_demo_users()
        if not db.session.scalar(select(func.count()).select_from(Client)):
            started = time.monotonic()
            stats = generate(args.clients, args.seed, echo=lambda *a: None)
            print(f"generate-data --clients {args.clients} --seed {args.seed}: {time.monotonic() - started:.1f} s; "
                  f"{stats}")
        counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Client, Case, JournalPost, ArchiveJob)}
        engine = db.engine
    print(f"data: {counts} ({engine.dialect.name})")

    from common import statement_timer

    statements = statement_timer(engine)

    browsers = {}

    def signed_in(username):
        if username not in browsers:
            c = app.test_client()
            assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
            browsers[username] = c
        return browsers[username]

    bare = load.bare_app().test_client()
    print(f"{'page':38s} {'bytes':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'queries':>7s} {'SQL ms':>7s} "
          f"{'bare p50':>8s} {'x bare':>6s}")
    for page in load.plan_pages(args):
        client = signed_in(page.user)
        samples, queries, sql, sizes = [], [], [], []
        frequent, spent = Counter(), Counter()
        for n in range(args.requests + 2):
            method, path, form, headers = page.requests[n % len(page.requests)]
            statements.clear()
            t0 = time.perf_counter()
            response = client.open(path, method=method, data=form, headers=headers)
            elapsed = time.perf_counter() - t0
            html = response.get_data(as_text=True)
            assert response.status_code == 200 and page.marker in html, (page.name, path, response.status_code)
            if n < 2:
                continue  # warm-up: first use of each template and statement
            samples.append(elapsed)
            queries.append(len(statements))
            sql.append(sum(t for t, _ in statements))
            sizes.append(len(response.get_data()))
            for t, statement in statements:
                key = " ".join(statement.split())[:120]
                frequent[key] += 1
                spent[key] += t
        size = round(statistics.mean(sizes))
        bare_samples = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            bare.get(f"/{size}")
            bare_samples.append(time.perf_counter() - t0)
        p50, p95, p99 = percentiles(samples)
        bare50 = percentiles(bare_samples)[0]
        print(f"{page.name:38s} {size:7d} {p50:7.1f} {p95:7.1f} {p99:7.1f} {statistics.mean(queries):7.1f} "
              f"{statistics.mean(sql) * 1000:7.1f} {bare50:8.1f} {p50 / bare50:6.1f}", flush=True)
        for statement, t in spent.most_common(args.top):
            print(f"      {frequent[statement] / len(samples):6.1f}/req {t * 1000 / len(samples):7.1f} ms/req  "
                  f"{statement}")
    print(f"latencies in ms, in-process, one thread; instance: {instance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
