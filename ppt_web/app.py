"""The application factory: config, logging, extensions, blueprints, security, errors and the CLI."""
from __future__ import annotations

import gc
import os
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import i18n, logs, models, security, signing_setup, text, web
from .activity.routes import bp as activity_bp
from .admin.routes import bp as admin_bp
from .archive.routes import bp as archive_bp
from .auth.routes import bp as auth_bp
from .cases import approval_routes, hold_back_routes, post_routes
from .cases import routes as case_routes
from .cases.blueprint import bp as cases_bp
from .clients.routes import bp as clients_bp
from .dispatch.routes import bp as dispatch_bp
from .extensions import csrf, db, htmx, init_migrate, init_sqlite, login_manager
from .letters import routes as letter_routes
from .letters import routes_templates as template_routes
from .letters.blueprint import bp as letters_bp
from .main import health
from .main.routes import bp as main_bp
from .postreg import paper_routes
from .postreg import routes as postreg_routes
from .postreg.blueprint import bp as postreg_bp
from .search.routes import bp as search_bp
from .statistics.routes import bp as statistics_bp

BLUEPRINTS = (auth_bp, main_bp, admin_bp, activity_bp, clients_bp, cases_bp, search_bp, archive_bp, postreg_bp,
              dispatch_bp, letters_bp, statistics_bp)
CASES_VIEWS = (case_routes, post_routes, approval_routes, hold_back_routes)  # imported for their views on cases_bp
POSTREG_VIEWS = (postreg_routes, paper_routes)  # and on postreg_bp
LETTERS_VIEWS = (letter_routes, template_routes)  # and on letters_bp
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
assert models.__all__  # imported for its side effect: every table is registered before the mappers are set up


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, security, errors and CLI."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("PPT_INSTANCE_PATH")
    app = Flask("ppt_web", instance_path=instance_path, instance_relative_config=True)
    app.cli = CommandsOnUse(app)
    app.url_map.converters["int"] = web.BoundedInt  # ids past a 64-bit integer are 404, not a database error
    config_module.load(app, config)
    logs.init_app(app)  # first: its before_request runs ahead of any that answers early
    proxies = int(app.config["PPT_TRUSTED_PROXIES"])
    if proxies > 0:  # https, the client's address and host as the reverse proxy saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    # Configure the ORM's mappers now, not on first use. The worker forks an RQ work horse per job
    # while its threads (intake, sweeps) run: had one of them been configuring the mappers at that
    # moment, the horse would inherit SQLAlchemy's configuration lock held, and hang before its job
    # claimed anything (seen as an archive job left Ny, and a worker that would not stop).
    configure_mappers()
    text.install()  # text the archive cannot carry never reaches a row
    init_sqlite(app)
    init_migrate(app, str(MIGRATIONS))
    csrf.init_app(app)
    htmx.init_app(app)
    i18n.init_app(app)  # Flask-Babel too
    login_manager.init_app(app)
    security.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    web.init_app(app)
    health.log_archive_problems(app)  # said at start, not first at the first job
    signing_setup.init_app(app)  # the test certificate when none is configured, and a warning saying so
    if not app.testing:  # tests make hundreds of apps in one process: nothing of theirs may stay frozen
        settle_gc()
    return app


# The modules only the command line imports (CommandsOnUse, the launcher): neither a web worker nor the RQ worker
# loads them, and the worker's warm-up (worker.py) leaves them out.
COMMAND_LINE_ONLY = frozenset({"ppt_web.cli", "ppt_web.backup", "ppt_web.generate", "ppt_web.launcher"})


class CommandsOnUse(AppGroup):
    """app.cli, whose commands (ppt_web/cli.py, and Flask-Migrate's `db`) are added the first time the command
    line lists or looks one up. A web worker and the RQ worker never do, so they do not import what only the
    commands use (Alembic, the backup, the data generator, the mail intake's decryptor and PDF reader)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app.name)
        self.app, self.loaded = app, False

    def load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        from flask_migrate.cli import db as migrate_commands  # noqa: PLC0415 - only the command line migrates

        from . import cli  # noqa: PLC0415 - see the class

        self.add_command(migrate_commands)
        cli.init_app(self.app)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load()
        return super().get_command(ctx, cmd_name)


# Garbage collection (docs/decisions.md, "Speed: the request path"): what start-up made lives as long as the
# process, so the collector stops looking at it (a full collection went through all of it: 100-120 ms every
# 60-200 page requests); and the youngest generation is collected less often (a list page makes tens of
# thousands of objects, nearly all freed by reference counting).
GC_THRESHOLD = (7000, 20, 20)


def settle_gc() -> None:
    """Collect once, then freeze what is left (the app, its modules, caches filled at start) out of the
    collector's view, and set the thresholds. Run it again when a process has finished starting (worker.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
