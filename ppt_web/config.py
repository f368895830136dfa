"""Configuration: defaults, then instance/config.py, then PPT_* environment variables, then create_app()."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

# Environment variable -> config key. Values from the environment are strings.
ENV_KEYS = {
    "PPT_SECRET_KEY": "SECRET_KEY",
    "PPT_DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "PPT_REDIS_URL": "PPT_REDIS_URL",
    "PPT_SYNC_DIR": "PPT_SYNC_DIR",
    "PPT_ARCHIVE_BACKEND": "PPT_ARCHIVE_BACKEND",
    "PPT_ARCHIVE_HTTP_URL": "PPT_ARCHIVE_HTTP_URL",
    "PPT_ARCHIVE_FOLDER": "PPT_ARCHIVE_FOLDER",
    "PPT_SWEEP_SECONDS": "PPT_SWEEP_SECONDS",
    "PPT_INBOUND_BACKEND": "PPT_INBOUND_BACKEND",
    "PPT_SVARINN_URL": "PPT_SVARINN_URL",
    "PPT_SVARINN_USER": "PPT_SVARINN_USER",
    "PPT_SVARINN_PASSWORD": "PPT_SVARINN_PASSWORD",
    "PPT_SVARINN_KEY": "PPT_SVARINN_KEY",
    "PPT_OUTBOUND_BACKEND": "PPT_OUTBOUND_BACKEND",
    "PPT_SVARUT_URL": "PPT_SVARUT_URL",
    "PPT_SVARUT_KONTO": "PPT_SVARUT_KONTO",
    "PPT_SVARUT_INTEGRATION_ID": "PPT_SVARUT_INTEGRATION_ID",
    "PPT_SVARUT_INTEGRATION_PASSWORD": "PPT_SVARUT_INTEGRATION_PASSWORD",
    "PPT_QUEUE_NAME": "PPT_QUEUE_NAME",
    "PPT_MAX_UPLOAD_BYTES": "PPT_MAX_UPLOAD_BYTES",
    "PPT_LOCAL_ARCHIVE_DIR": "PPT_LOCAL_ARCHIVE_DIR",
    "PPT_ARCHIVE_HTTP_TIMEOUT": "PPT_ARCHIVE_HTTP_TIMEOUT",
    "PPT_ARCHIVE_MAX_ATTEMPTS": "PPT_ARCHIVE_MAX_ATTEMPTS",
    "PPT_ARCHIVE_BACKOFF_SECONDS": "PPT_ARCHIVE_BACKOFF_SECONDS",
    "PPT_ARCHIVE_LEASE_SECONDS": "PPT_ARCHIVE_LEASE_SECONDS",
    "PPT_ARCHIVE_REPLY_HOURS": "PPT_ARCHIVE_REPLY_HOURS",
    "PPT_ARCHIVE_ALERT_MINUTES": "PPT_ARCHIVE_ALERT_MINUTES",
    "PPT_LOGIN_MAX_FAILURES": "PPT_LOGIN_MAX_FAILURES",
    "PPT_LOGIN_LOCKOUT_SECONDS": "PPT_LOGIN_LOCKOUT_SECONDS",
    "PPT_LOGIN_CLIENT_MAX_FAILURES": "PPT_LOGIN_CLIENT_MAX_FAILURES",
    "PPT_SVARINN_DIR": "PPT_SVARINN_DIR",
    "PPT_INTAKE_SECONDS": "PPT_INTAKE_SECONDS",
    "PPT_INTAKE_THREADS": "PPT_INTAKE_THREADS",
    "PPT_INBOUND_SECONDS": "PPT_INBOUND_SECONDS",
    "PPT_SYNC_SETTLE_SECONDS": "PPT_SYNC_SETTLE_SECONDS",
    "PPT_SYNC_INCOMPLETE_SECONDS": "PPT_SYNC_INCOMPLETE_SECONDS",
    "PPT_PAPER_KEEP_MONTHS": "PPT_PAPER_KEEP_MONTHS",
    "PPT_DOWNTIME_PAPER_KEEP_MONTHS": "PPT_DOWNTIME_PAPER_KEEP_MONTHS",
    "PPT_PAPER_STORAGE_PLACE": "PPT_PAPER_STORAGE_PLACE",
    "PPT_SMTP_HOST": "PPT_SMTP_HOST",
    "PPT_SMTP_PORT": "PPT_SMTP_PORT",
    "PPT_MAIL_FROM": "PPT_MAIL_FROM",
    "PPT_BASE_URL": "PPT_BASE_URL",
    "PPT_APPROVAL_WARN_DAYS": "PPT_APPROVAL_WARN_DAYS",
    "PPT_SIGNING_P12": "PPT_SIGNING_P12",
    "PPT_SIGNING_PASSWORD": "PPT_SIGNING_PASSWORD",
    "PPT_SIGNING_TRUST_ROOT": "PPT_SIGNING_TRUST_ROOT",
    "PPT_SIGNING_LOCATION": "PPT_SIGNING_LOCATION",
    "PPT_DISPATCH_SECONDS": "PPT_DISPATCH_SECONDS",
    "PPT_DISPATCH_MAX_ATTEMPTS": "PPT_DISPATCH_MAX_ATTEMPTS",
    "PPT_DISPATCH_BACKOFF_SECONDS": "PPT_DISPATCH_BACKOFF_SECONDS",
    "PPT_DISPATCH_LEASE_SECONDS": "PPT_DISPATCH_LEASE_SECONDS",
    "PPT_SVARUT_DIR": "PPT_SVARUT_DIR",
    "PPT_SVARUT_TOKEN_PROVIDER": "PPT_SVARUT_TOKEN_PROVIDER",
    "PPT_FIKSIO_API_URL": "PPT_FIKSIO_API_URL",
    "PPT_FIKSIO_AMQP_URL": "PPT_FIKSIO_AMQP_URL",
    "PPT_FIKSIO_ACCOUNT_ID": "PPT_FIKSIO_ACCOUNT_ID",
    "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID": "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID",
    "PPT_FIKSIO_PRIVATE_KEY": "PPT_FIKSIO_PRIVATE_KEY",
    "PPT_FIKSIO_CERTIFICATE": "PPT_FIKSIO_CERTIFICATE",
    "PPT_FIKSIO_INTEGRATION_ID": "PPT_FIKSIO_INTEGRATION_ID",
    "PPT_FIKSIO_INTEGRATION_PASSWORD": "PPT_FIKSIO_INTEGRATION_PASSWORD",
    "PPT_FIKSIO_TOKEN_PROVIDER": "PPT_FIKSIO_TOKEN_PROVIDER",
    "PPT_METRICS_TOKEN": "PPT_METRICS_TOKEN",
    "PPT_LOG_FORMAT": "PPT_LOG_FORMAT",
    "PPT_LOG_LEVEL": "PPT_LOG_LEVEL",
    "PPT_TRUSTED_PROXIES": "PPT_TRUSTED_PROXIES",
}

INT_KEYS = {"PPT_SWEEP_SECONDS", "PPT_MAX_UPLOAD_BYTES", "PPT_ARCHIVE_HTTP_TIMEOUT", "PPT_ARCHIVE_MAX_ATTEMPTS",
            "PPT_ARCHIVE_BACKOFF_SECONDS", "PPT_ARCHIVE_LEASE_SECONDS", "PPT_ARCHIVE_REPLY_HOURS",
            "PPT_ARCHIVE_ALERT_MINUTES", "PPT_LOGIN_MAX_FAILURES", "PPT_LOGIN_LOCKOUT_SECONDS",
            "PPT_LOGIN_CLIENT_MAX_FAILURES",
            "PPT_INTAKE_SECONDS", "PPT_INTAKE_THREADS", "PPT_INBOUND_SECONDS", "PPT_SYNC_SETTLE_SECONDS",
            "PPT_SYNC_INCOMPLETE_SECONDS",
            "PPT_PAPER_KEEP_MONTHS", "PPT_DOWNTIME_PAPER_KEEP_MONTHS", "PPT_SMTP_PORT", "PPT_APPROVAL_WARN_DAYS",
            "PPT_DISPATCH_SECONDS", "PPT_DISPATCH_MAX_ATTEMPTS", "PPT_DISPATCH_BACKOFF_SECONDS",
            "PPT_DISPATCH_LEASE_SECONDS", "PPT_TRUSTED_PROXIES"}


def defaults(instance_path: str) -> dict:
    """Zero-setup defaults: everything lives in the instance folder."""
    inst = Path(instance_path)
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{inst / 'ppt.sqlite'}",
        # Never echo SQL parameters (a national id) into an error or a log line.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        "PPT_REDIS_URL": None,  # the launcher's embedded Redis (embedded_redis_url), else none
        "PPT_SYNC_DIR": str(inst / "sync"),
        "PPT_ARCHIVE_BACKEND": "local",
        "PPT_ARCHIVE_HTTP_URL": None,
        "PPT_ARCHIVE_FOLDER": str(inst / "archive-link"),
        "PPT_LOCAL_ARCHIVE_DIR": str(inst / "archive"),
        "PPT_ARCHIVE_HTTP_TIMEOUT": 30,
        "PPT_ARCHIVE_MAX_ATTEMPTS": 8,
        "PPT_ARCHIVE_BACKOFF_SECONDS": 30,
        "PPT_ARCHIVE_LEASE_SECONDS": 20,  # the sender extends it every quarter; a dead one's job is free in < 30 s
        "PPT_ARCHIVE_REPLY_HOURS": 24,
        "PPT_ARCHIVE_ALERT_MINUTES": 120,
        "PPT_ARCHIVE_IMMEDIATE": True,
        "PPT_SWEEP_SECONDS": 60,
        # Fiks Arkiv settings the message builder takes from the case system (arkivdel, fagsystem, ...):
        # a dict; None uses the built-in defaults of ppt_web/archive/message.py.
        "PPT_ARCHIVE_SETTINGS": None,
        # The KS Fiks Arkiv XSDs and code lists to validate against; None uses the copy in the package.
        "PPT_STANDARDS_DIR": None,
        # Inbound mail: "folder" (a folder standing in for SvarInn) or "svarinn" (the KS service).
        "PPT_INBOUND_BACKEND": "folder",
        "PPT_SVARINN_DIR": str(inst / "svarinn"),
        "PPT_SVARINN_URL": None,
        "PPT_SVARINN_USER": None,
        "PPT_SVARINN_PASSWORD": None,
        "PPT_SVARINN_KEY": None,  # path of the PEM private key that opens SvarInn's encrypted files
        # Outbound letters: "folder" (a folder standing in for SvarUt) or "svarut" (KS SvarUt REST v3).
        "PPT_OUTBOUND_BACKEND": "folder",
        "PPT_SVARUT_URL": None,
        "PPT_SVARUT_KONTO": None,
        "PPT_SVARUT_INTEGRATION_ID": None,
        "PPT_SVARUT_INTEGRATION_PASSWORD": None,
        # Post registration: how often the sync folder and the inbound mail are looked at, how
        # long a scan must stay unchanged before it is read, and how long a file that does not yet read
        # as a whole PDF is waited for before it is reported (quarantined) as never completed.
        "PPT_INTAKE_SECONDS": 2,
        "PPT_INTAKE_THREADS": 2,  # files checked and rendered at once (each in its own child process)
        "PPT_INBOUND_SECONDS": 10,
        "PPT_SYNC_SETTLE_SECONDS": 2,
        "PPT_SYNC_INCOMPLETE_SECONDS": 300,
        # Paper originals: kept 3 months after scanning, 6 when registered after downtime.
        "PPT_PAPER_KEEP_MONTHS": 3,
        "PPT_DOWNTIME_PAPER_KEEP_MONTHS": 6,
        "PPT_PAPER_STORAGE_PLACE": "Arkivrommet",
        # Optional e-mail for notifications: off unless a host is set.
        "PPT_SMTP_HOST": None,
        "PPT_SMTP_PORT": 25,
        "PPT_MAIL_FROM": "ppt@localhost",
        "PPT_BASE_URL": "http://localhost:5000",
        # Approval and signing: waiting longer than this is highlighted; the service's
        # certificate (PKCS#12) for PAdES signatures, and the CA that makes them "trusted" on screen.
        "PPT_APPROVAL_WARN_DAYS": 3,
        "PPT_SIGNING_P12": None,
        "PPT_SIGNING_PASSWORD": None,
        "PPT_SIGNING_TRUST_ROOT": None,
        "PPT_SIGNING_LOCATION": "",
        # Letters: the service's letterhead where the letterhead screen has no value (keys name, address
        # (lines), org_number, phone, email; the logo is uploaded on the screen).
        "PPT_LETTERHEAD": {"name": "PP-tenesta", "address": "", "org_number": "", "phone": "", "email": ""},
        # Dispatch (SvarUt): how often pending shipments are (re)sent and statuses fetched.
        "PPT_DISPATCH_SECONDS": 30,
        "PPT_DISPATCH_MAX_ATTEMPTS": 8,
        "PPT_DISPATCH_BACKOFF_SECONDS": 60,
        "PPT_DISPATCH_LEASE_SECONDS": 3600,  # longer than a send may take (SvarUt allows 15 min)
        "PPT_SVARUT_DIR": str(inst / "svarut"),
        "PPT_SVARUT_TOKEN_PROVIDER": None,
        # KS Fiks IO (PPT_ARCHIVE_BACKEND=fiksio; ppt_web/fiksio/): KS's test environment by default.
        "PPT_FIKSIO_API_URL": "https://api.fiks.test.ks.no",
        "PPT_FIKSIO_AMQP_URL": "amqps://io.fiks.test.ks.no:5671",
        "PPT_FIKSIO_ACCOUNT_ID": None,  # our Fiks IO account (the queue we read)
        "PPT_FIKSIO_ARCHIVE_ACCOUNT_ID": None,  # the archive's Fiks IO account (where messages go)
        "PPT_FIKSIO_PRIVATE_KEY": None,  # path of our unencrypted PKCS#8 PEM key
        "PPT_FIKSIO_CERTIFICATE": None,  # path of its certificate (PEM), as uploaded to the Fiks IO account
        "PPT_FIKSIO_INTEGRATION_ID": None,
        "PPT_FIKSIO_INTEGRATION_PASSWORD": None,
        "PPT_FIKSIO_TOKEN_PROVIDER": None,  # "module:attribute"; unset: PPT_SVARUT_TOKEN_PROVIDER's
        # When set, /metrics wants "Authorization: Bearer <token>" from everyone; unset, it answers only
        # the host itself (loopback, not through an untrusted proxy) and 404 to anyone else.
        "PPT_METRICS_TOKEN": None,
        # Logging (ppt_web/logs.py): "text" or "json" lines on stderr, and the root level.
        "PPT_LOG_FORMAT": "text",
        "PPT_LOG_LEVEL": "INFO",
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are believed (nginx: 1).
        # 0 believes none, so a client cannot claim https or another address by sending the headers.
        "PPT_TRUSTED_PROXIES": 0,
        "PPT_SESSION_HOURS": 12,  # a session ends this long after sign-in, whatever the activity
        "PPT_LOGIN_MAX_FAILURES": 5,
        "PPT_LOGIN_LOCKOUT_SECONDS": 15 * 60,
        # Failed sign-ins from one client address (any usernames) in the same window before it is locked.
        "PPT_LOGIN_CLIENT_MAX_FAILURES": 20,
        "PPT_QUEUE_NAME": "ppt",
        "PPT_MAX_UPLOAD_BYTES": 50 * 1024 * 1024,
        # Sessions and CSRF (docs/decisions.md, "htmx settings for sensitive data and CSRF").
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "ppt_session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": True,
        "WTF_CSRF_FIELD_NAME": "csrf_token",  # Flask-WTF's own default; web.py keeps a session's signed token under it
        "BABEL_DEFAULT_LOCALE": "nn",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Oslo",
    }


def load(app, overrides: dict | None) -> None:
    """Fill app.config from defaults, instance/config.py, the environment, then overrides."""
    app.config.update(defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    for env, key in ENV_KEYS.items():
        value = os.environ.get(env)
        if value not in (None, ""):
            app.config[key] = int(value) if key in INT_KEYS else value
    if os.environ.get("PPT_ARCHIVE_IMMEDIATE") in ("0", "false", "no"):
        app.config["PPT_ARCHIVE_IMMEDIATE"] = False
    if overrides:
        app.config.update(overrides)
    if not app.config.get("PPT_REDIS_URL"):
        app.config["PPT_REDIS_URL"] = embedded_redis_url(Path(app.instance_path))
    # Refuse a request body far above the file limit before reading it (a post has several files).
    app.config.setdefault("MAX_CONTENT_LENGTH", app.config["PPT_MAX_UPLOAD_BYTES"] * 4 + 1024 * 1024)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Web, worker and CLI share the file: wait for a lock instead of failing at once.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {"timeout": 30})
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # No JIT compilation: the app's statements are short, and PostgreSQL's cost estimate for the
        # statistics' aggregates over years of posts set it off for 15-570 ms of compiling per statement,
        # more than the query itself (bench/statistics_page.py: the year's page 972 -> 765 ms).
        app.config["SQLALCHEMY_ENGINE_OPTIONS"].setdefault("connect_args", {"options": "-c jit=off"})


# Where the launcher (./run.sh) writes the URL of the Redis it started for this instance folder, while it
# runs: the CLI and anything else started beside it on the same folder find it there.
EMBEDDED_REDIS_FILE = Path("redis") / "url"


def embedded_redis_url(instance: Path) -> str | None:
    """The URL of the launcher's embedded Redis for this instance folder, if one is running: the URL it
    wrote, when the socket it names is still there (a launcher that was killed leaves the file behind)."""
    try:
        url = (instance / EMBEDDED_REDIS_FILE).read_text().strip()
    except OSError:
        return None
    if not url.startswith("unix://"):
        return None
    try:
        return url if stat.S_ISSOCK(os.stat(url.removeprefix("unix://")).st_mode) else None
    except OSError:
        return None


def _instance_secret(instance: Path) -> str:
    """A secret generated once into instance/, so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic: the first process to get here wins
        except FileExistsError:
            pass
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
