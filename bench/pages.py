"""Search and client-folder latency on generated data, next to a bare Flask page (the baseline).

    .venv/bin/python bench/pages.py [--clients 1000] [--seed 1] [--requests 200] [--instance DIR]

Makes a fresh instance (SQLite) unless --instance points at one that has data, fills it with
`generate-data`, then times requests in-process with Flask's test client (one thread: the app's
own cost, without a network or a WSGI server) and prints p50/p95/p99 per page.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"p50 {pick(.50):7.2f} ms  p95 {pick(.95):7.2f} ms  p99 {pick(.99):7.2f} ms  ({len(ms)} req)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--instance", default=None)
    args = parser.parse_args()

    instance = Path(args.instance or tempfile.mkdtemp(prefix="ppt-bench-"))
    os.environ["PPT_INSTANCE_PATH"] = str(instance)
    from flask import Flask, render_template_string
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from ppt_web import create_app
    from ppt_web.cli import DEMO_PASSWORD, seed_demo_users
    from ppt_web.extensions import db
    from ppt_web.generate import generate
    from ppt_web.models import Case, Client, JournalPost

    app = create_app({"WTF_CSRF_ENABLED": False, "PPT_REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        upgrade()
        seed_demo_users()
        if not db.session.scalar(select(func.count()).select_from(Client)):
            started = time.monotonic()
            stats = generate(args.clients, args.seed, echo=lambda *a: None)
            took = time.monotonic() - started
            size = sum(p.stat().st_size for p in instance.rglob("ppt.sqlite*"))
            print(f"generate-data --clients {args.clients} --seed {args.seed}: {took:.1f} s; {stats}; "
                  f"database {size / 2**20:.1f} MiB")
        counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in (Client, Case, JournalPost)}
        client_ids = list(db.session.scalars(select(Client.id)))
        names = sorted({n.split()[0] for n in db.session.scalars(select(Client.name_lower).limit(500))})
        national_ids = list(db.session.scalars(select(Client.national_id).limit(200)))
        own_client_ids = list(db.session.scalars(
            select(Client.id).join(Case, Case.client_id == Client.id).where(Case.handler_id == 4).limit(500)))
        db.engine.dispose()
    print(f"data: {counts}")

    rng = random.Random(1)
    queries = [rng.choice(names)[:3] for _ in range(40)] + national_ids[:20] + ["sakkunnig", "2026/0", "tilvising"]

    def timed(client, method, url, **kw) -> float:
        t0 = time.perf_counter()
        response = client.open(url, method=method, **kw)
        elapsed = time.perf_counter() - t0
        assert response.status_code == 200, (url, response.status_code)
        return elapsed

    def signed_in(username):
        c = app.test_client()
        assert c.post("/login", data={"username": username, "password": DEMO_PASSWORD}).status_code == 302
        return c

    # Baseline: a bare Flask app rendering a page of the same size, in the same process and run.
    bare = Flask("bare")
    sample_html = signed_in("konsulent").get(f"/clients/{client_ids[0]}").get_data(as_text=True)

    @bare.route("/")
    def page():
        return render_template_string("{{ body | safe }}", body=sample_html)

    bare_client = bare.test_client()
    rows = {"bare Flask page (baseline)": [timed(bare_client, "GET", "/") for _ in range(args.requests)]}

    konsulent, radgjevar = signed_in("konsulent"), signed_in("radgjevar1")
    hx = {"HX-Request": "true"}
    rows["search, search_all (konsulent)"] = [
        timed(konsulent, "POST", "/search/", data={"q": rng.choice(queries)}, headers=hx) for _ in range(args.requests)]
    rows["search, own cases (radgjevar1)"] = [
        timed(radgjevar, "POST", "/search/", data={"q": rng.choice(queries)}, headers=hx) for _ in range(args.requests)]
    rows["client folder (konsulent)"] = [
        timed(konsulent, "GET", f"/clients/{rng.choice(client_ids)}") for _ in range(args.requests)]
    if own_client_ids:
        rows["client folder, own (radgjevar1)"] = [
            timed(radgjevar, "GET", f"/clients/{rng.choice(own_client_ids)}") for _ in range(args.requests)]
    base = statistics.median(rows["bare Flask page (baseline)"])
    for name, samples in rows.items():
        print(f"{name:34s} {percentiles(samples)}  x{statistics.median(samples) / base:5.1f} of baseline")
    print(f"instance: {instance}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
