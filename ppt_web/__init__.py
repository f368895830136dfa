"""ppt_web: case and archive app for a municipal Educational-Psychological Service (PPT)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the app (ppt_web/app.py)."""
    # Imported here, not above: importing any submodule runs this file first, and a light one (the
    # logging setup of worker.py, a migration) must not load every blueprint and service with it.
    from .app import create_app as build  # noqa: PLC0415

    return build(config)
