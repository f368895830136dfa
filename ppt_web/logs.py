"""Process logging: text or JSON lines on stderr, an access line per request, no national ids.

One handler on the root logger, replaced (never added again) each time the app is created, so the
web app (flask run, gunicorn), worker.py with RQ's own loggers, the CLI and the tests all log the
same way. PPT_LOG_FORMAT is `text` (default) or `json`; PPT_LOG_LEVEL the root level (INFO).

What keeps personal data out of the log:
- a filter on the handler masks anything that may be a national id (fødselsnummer, D-number) in
  the message, its arguments, the exception text and the stack: every run of exactly 11 digits,
  valid or not (a mistyped number is still a person's); inside a longer run of digits, every
  11-digit window that `stdnum` says is a valid number; and 6+5 digits split by one space, dot or
  dash when the 11 digits are valid. Each becomes `***********`;
- request lines carry the path only, never the query string (search terms may be names or ids),
  and the app writes the only access line: werkzeug's request lines (flask run) are dropped, and
  gunicorn's access log is switched off by GunicornLogger;
- the user is the internal integer id (joins the activity log), never the username.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from rq import get_current_job
from sqlalchemy import inspect
from stdnum.no import fodselsnummer

MASK = "*" * 11
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RUN = re.compile(r"[0-9]{11,}")
_SPLIT = re.compile(r"(?<![0-9])([0-9]{6})[ .-]([0-9]{5})(?![0-9])")
# An incoming X-Request-ID is kept only if it is a short plain token without a possible national id.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_HOST = socket.gethostname()
_PROGRAM = os.path.basename(sys.argv[0] or "python")


def _valid_national_id(digits: str) -> bool:
    return fodselsnummer.is_valid(digits)


def mask_national_ids(text: str) -> str:
    """The text with every run of digits that may be a national id replaced by ***********."""
    if not isinstance(text, str) or len(text) < 11:
        return text

    def run(match: re.Match) -> str:
        digits = match.group()
        if len(digits) == 11:
            return MASK
        chars = list(digits)
        for i in range(len(digits) - 10):
            if _valid_national_id(digits[i:i + 11]):
                chars[i:i + 11] = MASK
        return "".join(chars)

    text = _RUN.sub(run, text)
    return _SPLIT.sub(lambda m: MASK if _valid_national_id(m.group(1) + m.group(2)) else m.group(), text)


def new_request_id() -> str:
    """A random id; hex, redrawn in the rare case it holds 11 digits in a row (they would be masked)."""
    while True:
        value = uuid.uuid4().hex
        if not _RUN.search(value):
            return value


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token (e.g. set by the reverse proxy), else a new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header) and not re.search(r"[0-9]{11}", header):
        return header
    return new_request_id()


def _user_id() -> int | None:
    """The signed-in user's internal id, if this request already loaded the user (no query from a log line)."""
    user = g.get("_login_user")
    if user is None:
        return None

    state = inspect(user, raiseerr=False)  # None for the anonymous user
    return state.identity[0] if state is not None and state.identity else None


class ContextFilter(logging.Filter):
    """Adds the request's (or the RQ job's) identifiers to every record, as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.method = request.method
            record.path = request.path  # never the query string
            record.remote_addr = request.remote_addr
            if not hasattr(record, "user_id"):
                try:
                    record.user_id = _user_id()
                except Exception:  # noqa: BLE001 - a log line never fails a request
                    record.user_id = None
        else:
            try:
                job = get_current_job()
            except Exception:  # noqa: BLE001
                job = None
            if job is not None:
                record.job_id = job.id
                record.job_func = job.func_name
        return True


class NationalIdFilter(logging.Filter):
    """Masks possible national ids in the message (with its args), the exception text and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: log what we have
            message = f"{record.msg} {record.args!r}"
        masked = mask_national_ids(message)
        if has_request_context() and request.query_string:
            masked = masked.replace("?" + request.query_string.decode("latin-1"), "?[query]")
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_national_ids(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_national_ids(record.stack_info)
        path = getattr(record, "path", None)
        if path:
            # An extra of the record (ContextFilter's): extras live in the record's __dict__.
            record.__dict__["path"] = mask_national_ids(path)
        return True


_CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "user_id", "remote_addr",
                   "job_id", "job_func")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg, process, pid, and the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "program": _PROGRAM,
            "process": record.processName,
            "pid": record.process,
            "thread": record.threadName,
            "host": _HOST,
        }
        for key in _CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the request id and user (or the job) appended when there is one."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        tags = [f"{key}={getattr(record, key)}" for key in ("request_id", "user_id", "job_id")
                if getattr(record, key, None) is not None]
        return f"{text} [{' '.join(tags)}]" if tags else text


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest swaps it per test), like logging.lastResort."""

    _ppt: bool  # set by configure() on the handler it installs

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _DropWerkzeugRequestLines(logging.Filter):
    """The dev server's own request line carries the query string; the app writes its own line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return '"%s" %s %s' not in str(record.msg)


def configure(log_format: str | None = None, level: str | int | None = None) -> logging.Handler:
    """Install (or replace) the one stderr handler on the root logger; values default to the environment."""
    log_format = (log_format or os.environ.get("PPT_LOG_FORMAT") or "text").strip().lower()
    if log_format not in FORMATS:
        raise ValueError(f"PPT_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    level = level or os.environ.get("PPT_LOG_LEVEL") or "INFO"
    if isinstance(level, str):
        level = level.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"PPT_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        # Ours from an earlier create_app, and the plain console handlers of basicConfig or
        # alembic's fileConfig (db upgrade in the same process); pytest's capture handlers stay.
        if getattr(handler, "_ppt", False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    handler = StderrHandler()
    handler._ppt = True
    handler.addFilter(ContextFilter())
    handler.addFilter(NationalIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # A library's warning (a DeprecationWarning at import, say) is a log record like any other: in the
    # chosen format, masked, on the "py.warnings" logger; printed raw, it would break a JSON log.
    logging.captureWarnings(True)
    # alembic's fileConfig disables every logger that existed before it ran: bring them back.
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.disabled:
            logger.disabled = False
    alembic = logging.getLogger("alembic")
    if alembic.level == logging.NOTSET:
        alembic.setLevel(logging.WARNING)  # "setup plugin ..." at every start; db upgrade sets INFO again
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _DropWerkzeugRequestLines) for f in werkzeug.filters):
        werkzeug.addFilter(_DropWerkzeugRequestLines())
    return handler


def init_app(app: Flask) -> None:
    """Configure logging from the app's config and write one access line per request."""
    configure(app.config.get("PPT_LOG_FORMAT"), app.config.get("PPT_LOG_LEVEL"))
    logging.getLogger(app.name).removeHandler(default_handler)  # the root handler is the only one
    access = logging.getLogger("ppt.access")

    def start_request():
        g.request_id = request_id_from(request.headers.get("X-Request-ID"))
        g.request_started = time.perf_counter()

    def log_access(status: int) -> None:
        if g.get("request_access_logged"):
            return
        g.request_access_logged = True
        started = g.get("request_started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        # Static files (css, js, images) are noise at INFO; a failing one is not.
        quiet = request.path.startswith("/static/") and status < 400
        access.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s %s ms", request.method, request.path,
                   status, duration, extra={"status": status, "duration_ms": duration})

    def after_request(response):
        if not g.get("request_id"):
            start_request()  # a before_request ahead of ours answered early
        response.headers["X-Request-ID"] = g.request_id
        log_access(response.status_code)
        return response

    def teardown_request(exc):
        if exc is not None:
            log_access(500)  # an exception no handler turned into a response (PROPAGATE_EXCEPTIONS)

    app.before_request_funcs.setdefault(None, []).insert(0, start_request)
    app.after_request(after_request)
    app.teardown_request(teardown_request)


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover - gunicorn is a runtime dependency, but not on every platform
    _GunicornLogger = object


class GunicornLogger(_GunicornLogger):
    """gunicorn --logger-class ppt_web.logs.GunicornLogger: its own lines (boot, worker timeouts) in the
    app's format through the root handler, and no access log of its own (that would carry query strings)."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            if getattr(handler, "_gunicorn", False):
                self.error_log.removeHandler(handler)
        self.error_log.propagate = True
        self.access_log.propagate = False
        configure()  # the arbiter has no app: PPT_LOG_FORMAT / PPT_LOG_LEVEL from the environment

    @property
    def access_log_enabled(self) -> bool:
        return False

    def access(self, resp, req, environ, request_time):
        return None
