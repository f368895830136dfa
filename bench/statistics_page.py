"""The statistics page on a large instance, beside the archive log page in the same run: latency, SQL
statements per request and the time spent in them; then each figure function alone, so a slow figure
is named.

    .venv/bin/python bench/bigdata.py --instance /tmp/big-sqlite --clients 20000      # once: ten years
    .venv/bin/python bench/statistics_page.py --instance /tmp/big-sqlite
    .venv/bin/python bench/statistics_page.py --instance /tmp/big-pg \\
        --database-url 'postgresql+psycopg://ppt@/big?host=/tmp/pgdir' [--requests 20] [--top 3]

In-process, one thread, with Flask's test client signed in as the leader (leiar), as bench/pages.py
does: the app's own cost, without a network or a WSGI server. Migrates the database to head first (a
bench instance made before the newest migration gets its indexes; --no-migrate leaves it as it is, for
the "before" of a new index). Timed, in this order:

- the statistics page for one year (the data's last full year) and for the whole range of the data
  (the first case's opening day to today), every figure on it;
- one CSV (--csv, default the waiting time: the figure with percentiles over the most rows) of that
  year, and its print view;
- the archive log page (failed first, as the consultant), the page bench/pages.py times;
- each figure function of ppt_web/statistics (casework, records) alone, for the year and the whole
  range: p50/p95, statements per call and the SQL time; and the drill-down list of the year's worst
  quarter.

Latencies in ms; p50/p95 over --requests samples after two warm-up requests (the first use of each
template and statement). "SQL ms" is the time inside cursor.execute: SQLite returns from it at the
first row, so a statement that returns many rows (or groups after a scan) spends the rest while its
rows are fetched, counted in the latency but not in "SQL ms"; PostgreSQL's execute waits for all of it.
(Not bench/statistics.py: the other benchmarks import the standard library's statistics, with bench/
first on their path.)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Sample:
    """One timed thing: wall times, statements per run, SQL seconds per run, the statements' costs."""

    name: str
    wall: list[float]
    queries: list[int]
    sql: list[float]
    spent: dict[str, float]
    frequent: Counter[str]
    size: int = 0


def period_args(first: date, last: date) -> dict[str, str]:
    """The page's query arguments for days first..last: a year when it is one calendar year, else from-to."""
    if (first.month, first.day, last.month, last.day) == (1, 1, 12, 31) and first.year == last.year:
        return {"period": "year", "year": str(first.year)}
    return {"period": "range", "from": f"{first:%d.%m.%Y}", "to": f"{last:%d.%m.%Y}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True, help="a bench instance with data (bench/bigdata.py)")
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page and calls per figure")
    parser.add_argument("--range-requests", type=int, default=5,
                        help="the same for the whole range (slow by nature: every month of ten years)")
    parser.add_argument("--year", type=int, default=None, help="default: the data's last full year")
    parser.add_argument("--csv", default="waiting", help="the figure key of the CSV timed")
    parser.add_argument("--only", default="", help="comma-separated parts of names to time (default: all)")
    parser.add_argument("--no-migrate", action="store_true",
                        help="time the database at its migration as it is (the 'before' of a new index)")
    parser.add_argument("--top", type=int, default=0, help="also print the N costliest statements of each")
    args = parser.parse_args()

    instance = Path(args.instance).resolve()
    url = args.database_url or f"sqlite:///{instance / 'ppt.sqlite'}"
    os.environ["PPT_INSTANCE_PATH"] = str(instance)
    os.environ.pop("PPT_DATABASE_URL", None)
    from common import pct
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from ppt_web import create_app
    from ppt_web.cli import DEMO_PASSWORD, seed_demo_users
    from ppt_web.clock import today
    from ppt_web.extensions import db
    from ppt_web.models import ArchiveJob, Case, Client, JournalPost, User
    from ppt_web.statistics import casework, records
    from ppt_web.statistics.figures import Filters, Period

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False,
                      "PPT_REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "bench"})
    with app.app_context():
        if not args.no_migrate:
            upgrade()
        seed_demo_users()
        counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Client, Case, JournalPost, ArchiveJob)}
        if not counts["Client"]:
            print(f"{instance} has no data: make it with bench/bigdata.py", file=sys.stderr)
            return 2
        first_day = db.session.scalar(select(func.min(Case.opened_on)))
        first_day = first_day if isinstance(first_day, date) else date.fromisoformat(str(first_day))
        engine = db.engine
    now = today()
    year = args.year or (now.year - 1)
    the_year = Period(date(year, 1, 1), date(year, 12, 31), "year")
    everything = Period(first_day, now, "range")
    print(f"data: {counts} ({engine.dialect.name}); year {year}; whole range {first_day}..{now}")

    from common import statement_timer

    statements = statement_timer(engine)

    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]

    def timed(name: str, run: Callable[[], int], requests: int | None = None) -> Sample | None:
        """run() once per sample; it returns the size of what it made (bytes of a page, rows of a figure)."""
        if wanted and not any(w in name.lower() for w in wanted):
            return None
        sample = Sample(name, [], [], [], defaultdict(float), Counter())
        sizes = []
        for n in range((requests or args.requests) + 2):
            statements.clear()
            t0 = time.perf_counter()
            size = run()
            elapsed = time.perf_counter() - t0
            if n < 2:
                continue
            sample.wall.append(elapsed)
            sample.queries.append(len(statements))
            sample.sql.append(sum(t for t, _ in statements))
            sizes.append(size)
            for t, statement in statements:
                key = " ".join(statement.split())[:160]
                sample.frequent[key] += 1
                sample.spent[key] += t
        sample.size = round(statistics.mean(sizes))
        ms = [s * 1000 for s in sample.wall]
        print(f"{name:52s} {sample.size:8d} {pct(ms, .50):8.1f} {pct(ms, .95):8.1f} "
              f"{statistics.mean(sample.queries):7.1f} {statistics.mean(sample.sql) * 1000:8.1f}", flush=True)
        for statement, t in sorted(sample.spent.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"      {sample.frequent[statement] / len(sample.wall):6.1f}/run {t * 1000 / len(sample.wall):8.1f} "
                  f"ms/run  {statement}")
        return sample

    browsers = {}

    def signed_in(username: str):
        if username not in browsers:
            c = app.test_client()
            assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
            browsers[username] = c
        return browsers[username]

    def page(username: str, path: str, marker: str, query: dict | None = None) -> Callable[[], int]:
        def run() -> int:
            response = signed_in(username).get(path, query_string=query)
            body = response.get_data()
            assert response.status_code == 200 and marker.encode() in body, (path, query, response.status_code,
                                                                             body[:300])
            assert b'id="stats-problems"' not in body, (path, query, "the page refused the period")
            return len(body)
        return run

    header = f"{'':52s} {'bytes':>8s} {'p50':>8s} {'p95':>8s} {'queries':>7s} {'SQL ms':>8s}"
    print("\npages (leiar; the archive log as konsulent)\n" + header)
    year_args, all_args = period_args(the_year.first, the_year.last), period_args(everything.first, everything.last)
    timed(f"statistics page, year {year}", page("leiar", "/statistics/", 'id="stats-filters"', year_args))
    timed("statistics page, whole range", page("leiar", "/statistics/", 'id="stats-filters"', all_args),
          args.range_requests)
    timed(f"statistics CSV {args.csv}, year {year}",
          page("leiar", f"/statistics/{args.csv}.csv", "\ufeff", year_args))
    timed(f"statistics print view, year {year}", page("leiar", "/statistics/print", "<svg", year_args))
    timed("archive log (failed first)", page("konsulent", "/archive-log/", 'id="archive-rows"'))

    with app.test_request_context("/statistics/"):
        leader = db.session.scalars(select(User).where(User.username == "leiar")).one()

        def figure(make: Callable, f: Filters) -> Callable[[], int]:
            takes_actor = make in (casework.waiting_time,)

            def run() -> int:
                made = make(leader, f) if takes_actor else make(f)
                db.session.rollback()
                return len(made.rows)
            return run

        print("\nfigure functions alone (size: rows)\n" + header)
        for f, label, n in ((Filters(the_year), f"year {year}", args.requests),
                            (Filters(everything), "whole range", args.range_requests)):
            for make in (*casework.FIGURES, *records.FIGURES):
                timed(f"{make.__module__.rsplit('.', 1)[-1]}.{make.__name__}, {label}", figure(make, f), n)
        waiting = casework.waiting_time(leader, Filters(the_year))
        longer = len(waiting.columns) - 1
        worst = max(waiting.rows, key=lambda r: r[longer] or 0)[0] if waiting.rows else None
        db.session.rollback()
        if worst:
            def drill() -> int:
                found = casework.waiting_cases(leader, worst, Filters(the_year))
                db.session.rollback()
                return len(found)
            timed(f"casework.waiting_cases {worst}", drill)
    print(f"latencies in ms, in-process, one thread; {engine.dialect.name}; instance: {instance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
