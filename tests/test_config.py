"""Every setting the code reads is declared with its default, and instance/config.example.py names each."""
from __future__ import annotations

import os
import re

import pytest

from ppt_web import config

from .helpers import ROOT

pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database

# Flask's and its extensions' own settings, which the app reads but Flask declares.
FLASK_OWN = {"PROPAGATE_EXCEPTIONS", "SESSION_COOKIE_SECURE", "BABEL_TRANSLATION_DIRECTORIES", "SECRET_KEY",
             "MAX_CONTENT_LENGTH", "SECRET_KEY_FALLBACKS"}


def settings_read_by_the_code() -> set[str]:
    pattern = re.compile(r"""(?:config|cfg)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""")
    found: set[str] = set()
    for path in [*(ROOT / "ppt_web").rglob("*.py"), ROOT / "worker.py"]:
        found |= set(pattern.findall(path.read_text()))
    return found


def test_every_setting_the_code_reads_has_a_default():
    """A setting read with no default fails at run time on the first install that lacks it."""
    assert settings_read_by_the_code() - FLASK_OWN - set(config.defaults("/instance")) == set()


def test_the_example_config_names_every_setting():
    """instance/config.example.py is what an operator copies: it lists every default."""
    example = (ROOT / "instance" / "config.example.py").read_text()
    named = set(re.findall(r"^# ([A-Z][A-Z0-9_]+) = ", example, re.M))
    assert set(config.defaults("/instance")) - named == set()
    assert set(config.ENV_KEYS.values()) - named - {"SECRET_KEY"} == set()


def _loaded(instance, **overrides) -> dict:
    from flask import Flask

    app = Flask("config_test", instance_path=str(instance))
    config.load(app, {"SECRET_KEY": "test", **overrides})
    return app.config


def test_the_cli_beside_the_launcher_finds_its_embedded_redis(tmp_path):
    """The launcher writes its embedded Redis's URL into the instance folder while it runs: an app made on
    that folder without PPT_REDIS_URL (flask generate-data, flask backup) uses it. A file whose socket is
    gone (a launcher that was killed) or that names no unix socket is ignored; PPT_REDIS_URL wins."""
    import socket
    import tempfile

    instance = tmp_path / "instance"
    (instance / "redis").mkdir(parents=True)
    assert _loaded(instance)["PPT_REDIS_URL"] is None
    folder = tempfile.mkdtemp(prefix="ppt-test-")  # a socket's path must be short
    path = f"{folder}/redis.sock"
    listening = socket.socket(socket.AF_UNIX)
    try:
        listening.bind(path)
        (instance / config.EMBEDDED_REDIS_FILE).write_text(f"unix://{path}\n")
        assert _loaded(instance)["PPT_REDIS_URL"] == f"unix://{path}"
        assert _loaded(instance, PPT_REDIS_URL="redis://elsewhere:6379/0")["PPT_REDIS_URL"] == "redis://elsewhere:6379/0"
        (instance / config.EMBEDDED_REDIS_FILE).write_text(f"redis://{path}\n")
        assert _loaded(instance)["PPT_REDIS_URL"] is None
        (instance / config.EMBEDDED_REDIS_FILE).write_text(f"unix://{tmp_path}\n")  # not a socket
        assert _loaded(instance)["PPT_REDIS_URL"] is None
    finally:
        listening.close()
        os.unlink(path)
        os.rmdir(folder)
    (instance / config.EMBEDDED_REDIS_FILE).write_text(f"unix://{path}\n")
    assert _loaded(instance)["PPT_REDIS_URL"] is None  # the socket is gone
