"""Memory of the app's processes: what a web worker and an RQ worker hold after start, and which heavy
modules they have imported.

    .venv/bin/python bench/memory.py --instance /tmp/big-sqlite-copy [--requests 50] [--redis-url URL]

Each figure comes from a fresh process, so one run's figures do not leak into the next:
(a) `create_app()` alone: RSS, and which of HEAVY it imported;
(b) the same after REQUESTS requests spread over five main pages (start page, search, client folder,
    post registration inbox, archive log) with Flask's test client: what a web worker holds once warm;
(c) `worker.py` after start (needs Redis: --redis-url, or a throwaway redis-server on a unix socket is
    started when one is on PATH): RSS, PSS and USS of the worker and of each child (the RQ scheduler,
    the archive sender). PSS splits the pages a fork shares with its parent between them; USS is what
    the process alone holds.
The instance is read by (a) and (b) and written by (c) (shipped letter templates, RQ's bookkeeping): use
a copy of a bench instance, never the original.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Modules that cost megabytes to import and that a page or a job may not need at start.
HEAVY = ("alembic", "flask_migrate", "pypdf", "pypdfium2", "PIL", "pika", "rq", "lxml", "asn1crypto",
         "cryptography.x509", "pyhanko", "weasyprint", "ppt_web.cli", "ppt_web.backup", "ppt_web.admin.service",
         "ppt_web.inbound.svarinn", "ppt_web.generate")
DEMO_PASSWORD = "demo-passord"  # ppt_web.cli's: imported from there, it would load the commands' modules
PAGES = ("start page (radgjevar1)", "search, own (radgjevar1)", "client folder (radgjevar1)",
         "post registration inbox (sekretaer)", "archive log (failed first)")


def rss_mib(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid or os.getpid()).memory_info().rss / 2**20


def full_mib(pid: int) -> dict:
    """RSS, PSS and USS of one process, in MiB."""
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return {k: round(getattr(info, k) / 2**20, 1) for k in ("rss", "pss", "uss")}


def child_app(args) -> None:
    """In a fresh process: create_app(), then (with --requests) the pages. Prints one JSON line."""
    from ppt_web import create_app

    app = create_app({"PPT_REDIS_URL": args.redis_url or "redis://127.0.0.1:1/0", "WTF_CSRF_ENABLED": False})
    result = {"create_app": round(rss_mib(), 1), "heavy": [m for m in HEAVY if m in sys.modules]}
    if args.requests:
        import load

        args.database_url, args.pages = app.config["SQLALCHEMY_DATABASE_URI"], ""
        pages = [p for p in load.plan_pages(args) if p.name in PAGES]
        assert len(pages) == len(PAGES), [p.name for p in pages]
        clients = {}
        for n in range(args.requests):
            page = pages[n % len(pages)]
            if page.user not in clients:
                clients[page.user] = app.test_client()
                signed = clients[page.user].post("/login", data={"username": page.user, "password": DEMO_PASSWORD})
                assert signed.status_code == 302, page.user
            method, path, form, headers = page.requests[n // len(pages) % len(page.requests)]
            response = clients[page.user].open(path, method=method, data=form, headers=headers)
            assert response.status_code == 200 and page.marker in response.get_data(as_text=True), (page.name, path)
        result["after_requests"] = round(rss_mib(), 1)
        result["heavy_after"] = [m for m in HEAVY if m in sys.modules]
    print("RESULT " + json.dumps(result), flush=True)


def run_child(args, requests: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--instance", args.instance, "--requests", str(requests)]
    if args.redis_url:
        cmd += ["--redis-url", args.redis_url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PPT_INSTANCE_PATH": args.instance},
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")


def worker_memory(args, redis_url: str) -> dict:
    """Start worker.py, wait until RQ has registered it and its children have started, then measure."""
    import psutil
    import redis

    name = f"memory-bench.{os.getpid()}"
    env = {**os.environ, "PPT_INSTANCE_PATH": args.instance, "PPT_REDIS_URL": redis_url,
           "PPT_QUEUE_NAME": f"memory-bench-{os.getpid()}", "PPT_LOG_LEVEL": "WARNING"}
    log = open(Path(tempfile.gettempdir()) / f"memory-bench-worker-{os.getpid()}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--name", name], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    conn = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 120
        while not any(name.encode() in key for key in conn.smembers("rq:workers")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker.py did not start; see {log.name}")
            time.sleep(0.2)
        time.sleep(args.settle)  # the scheduler and the threads' first rounds
        result = {"worker": full_mib(proc.pid)}
        for child in psutil.Process(proc.pid).children(recursive=True):
            result[f"child {child.pid}"] = full_mib(child.pid)
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instance", required=True, help="a copy of a bench instance (it is written to by (c))")
    parser.add_argument("--requests", type=int, default=50, help="for (b), spread over the five pages")
    parser.add_argument("--redis-url", default=None, help="for (c); default: a throwaway redis-server")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the worker registered")
    parser.add_argument("--skip-worker", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.instance = str(Path(args.instance).resolve())
    if args.child:
        child_app(args)
        return 0
    print(f"load average {os.getloadavg()}", flush=True)
    a = run_child(args, 0)
    print(f"(a) create_app(): {a['create_app']} MiB RSS; heavy modules imported: {' '.join(a['heavy']) or '-'}")
    if args.requests:
        b = run_child(args, args.requests)
        print(f"(b) after {args.requests} requests to 5 pages: {b['after_requests']} MiB RSS "
              f"(create_app {b['create_app']}); heavy modules then: {' '.join(b['heavy_after']) or '-'}")
    if not args.skip_worker:
        redis_proc, sock_dir = None, None
        url = args.redis_url
        if not url:
            server = shutil.which("redis-server")
            if not server:
                raise SystemExit("no redis-server on PATH: pass --redis-url or --skip-worker")
            sock_dir = tempfile.mkdtemp(prefix="ppt-mem-")
            sock = Path(sock_dir) / "redis.sock"
            redis_proc = subprocess.Popen([server, "--port", "0", "--unixsocket", str(sock), "--save", ""],
                                          stdout=subprocess.DEVNULL)
            url = f"unix://{sock}"
            while not sock.exists():
                time.sleep(0.05)
        try:
            c = worker_memory(args, url)
        finally:
            if redis_proc:
                redis_proc.terminate()
                redis_proc.wait()
            if sock_dir:
                shutil.rmtree(sock_dir, ignore_errors=True)
        print("(c) worker.py after start (MiB): " + "; ".join(
            f"{k} rss {v['rss']} pss {v['pss']} uss {v['uss']}" for k, v in c.items()))
    print(f"load average {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
