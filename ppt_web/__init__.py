"""ppt_web: case and archive app for a municipal Educational-Psychological Service (PPT)."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, security, errors and CLI."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("PPT_INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    from .web import BoundedInt

    app.url_map.converters["int"] = BoundedInt  # ids past a 64-bit integer are 404, not a database error
    from . import config as config_module

    config_module.load(app, config)
    from . import logs

    logs.init_app(app)  # first: its before_request runs ahead of any that answers early
    proxies = int(app.config["PPT_TRUSTED_PROXIES"])
    if proxies > 0:  # https, the client's address and host as the reverse proxy saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from . import i18n, models, queue, security, web  # noqa: F401  (models registers tables)
    from .extensions import csrf, db, htmx, login_manager, migrate

    db.init_app(app)
    # Configure the ORM's mappers now, not on first use. The worker forks an RQ work horse per job
    # while its threads (intake, sweeps) run: had one of them been configuring the mappers at that
    # moment, the horse would inherit SQLAlchemy's configuration lock held, and hang before its job
    # claimed anything (seen as an archive job left Ny, and a worker that would not stop).
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    from .extensions import init_sqlite

    init_sqlite(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
                     render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    i18n.init_app(app)  # Flask-Babel too
    login_manager.init_app(app)
    security.init_app(app)

    from .activity.routes import bp as activity_bp
    from .admin.routes import bp as admin_bp
    from .archive.routes import bp as archive_bp
    from .auth.routes import bp as auth_bp
    from .cases.routes import bp as cases_bp
    from .clients.routes import bp as clients_bp
    from .dispatch.routes import bp as dispatch_bp
    from .main.routes import bp as main_bp
    from .postreg.routes import bp as postreg_bp
    from .search.routes import bp as search_bp

    for bp in (auth_bp, main_bp, admin_bp, activity_bp, clients_bp, cases_bp, search_bp, archive_bp, postreg_bp,
               dispatch_bp):
        app.register_blueprint(bp)

    web.init_app(app)
    from . import cli

    cli.init_app(app)
    return app
