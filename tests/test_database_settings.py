"""Settings the app gives its database connections."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from ppt_web.extensions import db


def test_postgresql_connections_compile_no_jit(app):
    """JIT compiling cost the statistics' year page a fifth of its time on the ten-year data."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("JIT is PostgreSQL's")
        assert db.session.scalar(text("SHOW jit")) == "off"
