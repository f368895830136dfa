"""The application factory: config, logging, extensions, blueprints, security, errors and the CLI."""
from __future__ import annotations

import gc
import os
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix

from . import cli, i18n, logs, models, security, signing_setup, text, web
from . import config as config_module
from .activity.routes import bp as activity_bp
from .admin.routes import bp as admin_bp
from .archive.routes import bp as archive_bp
from .auth.routes import bp as auth_bp
from .cases import approval_routes, hold_back_routes, post_routes
from .cases import routes as case_routes
from .cases.blueprint import bp as cases_bp
from .clients.routes import bp as clients_bp
from .dispatch.routes import bp as dispatch_bp
from .extensions import csrf, db, htmx, init_sqlite, login_manager, migrate
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
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    i18n.init_app(app)  # Flask-Babel too
    login_manager.init_app(app)
    security.init_app(app)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    web.init_app(app)
    cli.init_app(app)
    health.log_archive_problems(app)  # said at start, not first at the first job
    signing_setup.init_app(app)  # the test certificate when none is configured, and a warning saying so
    if not app.testing:  # tests make hundreds of apps in one process: nothing of theirs may stay frozen
        settle_gc()
    return app


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
