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
# A digit: any decimal digit (also full-width and other scripts), or one percent-encoded (%33, %2533).
_DIGIT = r"(?:\d|%(?:25)*3[0-9])"
# What may stand between the digits of a number someone wrote or crafted: white space and control
# characters (raw, or as the \n, \x1b, \u2028 this module writes), . _ / \ + and dashes, and any
# percent-encoded byte (%2F, %20, %252F) that is not itself a digit.
_SEP = (r"(?:\\[nrt]|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|%(?:25)*(?!3[0-9])[0-9A-Fa-f]{2}"
        r"|[\s\x00-\x1f\x7f-\x9f._/\\+\-\u2010-\u2015])")
_CHAIN = re.compile(rf"{_DIGIT}+(?:{_SEP}{{1,5}}{_DIGIT}+)*")
# Without a percent sign or a backslash every digit and separator is one character, so a chain of 11
# digits is a run of at least 11 characters of these: a text without such a run holds no national id.
_RUN_OF_CHAIN_CHARACTERS = re.compile(r"[\d\s\x00-\x1f\x7f-\x9f._/\\+\-\u2010-\u2015]{11,}")
_TOKEN = re.compile(rf"(?P<digit>{_DIGIT})|{_SEP}")
_ANY_DIGIT = re.compile(r"\d")
# A UUID as machines write it (an RQ job, a Fiks IO account and its queue, an archive message): its
# digits are random hex, and one in about 130 has a group of 11 digits that is nobody's national id.
_UUID = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                   r"(?![0-9A-Za-z])")
# Characters that would end a line or steer a terminal: C0 and C1 controls, DEL, the Unicode line
# and paragraph separators, bidirectional overrides and isolates, and the byte order mark.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# An incoming X-Request-ID is kept only if it is a short plain token without a possible national id.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_HOST = socket.gethostname()
_PROGRAM = os.path.basename(sys.argv[0] or "python")


def _valid_national_id(digits: str) -> bool:
    """A fødselsnummer, D- or H-number (stdnum), or an FH-number (a help number: the same check digits)."""
    if fodselsnummer.is_valid(digits):
        return True
    return digits[0] in "89" and digits[9] == fodselsnummer.calc_check_digit1(digits) and \
        digits[10] == fodselsnummer.calc_check_digit2(digits)


def mask_national_ids(text: str) -> str:
    """The text with everything that may be a national id replaced by ***********.

    A chain is digits with at most five separators between groups (see _SEP). In it, masked are:
    a group of exactly 11 digits, valid or not (a mistyped number is still a person's); two groups
    of 6 and 5 digits, valid or not (how people write one); and any 11 digits in a row across the
    chain, separators left out, that make a valid number. Other separated digits (an address, a
    date and time, a status next to a duration) stay readable unless they happen to be a valid number.
    Inside a UUID (8-4-4-4-12 hex digits, nothing glued to it) only a valid number is masked.
    """
    if not isinstance(text, str) or len(text) < 11:
        return text
    if "%" not in text and "\\" not in text and not _RUN_OF_CHAIN_CHARACTERS.search(text):
        return text  # the common case (a request id, a path, a short message): one scan in C
    return _masked(text)


def _masked(text: str) -> str:
    """mask_national_ids without its shortcut (the tests compare the two)."""
    if len(_ANY_DIGIT.findall(text)) < 11 and "%" not in text:
        return text
    spans: list[tuple[int, int]] = []
    uuids = [found.span() for found in _UUID.finditer(text)] if "-" in text else []
    for chain in _CHAIN.finditer(text):
        if chain.end() - chain.start() >= 11:  # every digit is at least one character
            in_uuid = any(start <= chain.start() and chain.end() <= end for start, end in uuids)
            spans += _chain_spans(chain, only_valid=in_uuid)
    if not spans:
        return text
    out, last = [], 0
    for start, end in _merged(spans):
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


def _chain_spans(chain: re.Match, only_valid: bool = False) -> list[tuple[int, int]]:
    digits: list[tuple[int, int, str, int]] = []  # start, end, the digit, its group
    group, after_sep = 0, False
    for token in _TOKEN.finditer(chain.group()):
        if token.group("digit") is None:
            after_sep = True
            continue
        if after_sep:
            group, after_sep = group + 1, False
        value = token.group()
        digits.append((chain.start() + token.start(), chain.start() + token.end(), str(int(value[-1])), group))
    if len(digits) < 11:
        return []
    spans = []
    sizes = [] if only_valid else [sum(1 for d in digits if d[3] == g) for g in range(group + 1)]
    if sizes == [6, 5]:
        spans.append((digits[0][0], digits[-1][1]))
    for number, size in enumerate(sizes):
        if size == 11:
            members = [d for d in digits if d[3] == number]
            spans.append((members[0][0], members[-1][1]))
    numbers = "".join(d[2] for d in digits)
    for i in range(len(digits) - 10):
        if _valid_national_id(numbers[i:i + 11]):
            spans.append((digits[i][0], digits[i + 10][1]))
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def escape_controls(text, keep_newlines: bool = False):
    """The text with every character that could end a log line or steer a terminal written as an
    escape (\\n, \\r, \\t, \\x1b, \\u2028 ...); keep_newlines leaves LF alone (a traceback in JSON)."""
    if not isinstance(text, str) or not _CONTROL.search(text):
        return text

    def escape(match: re.Match) -> str:
        char = match.group()
        if keep_newlines and char == "\n":
            return char
        code = ord(char)
        return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _CONTROL.sub(escape, text)


def os_reason(exc: OSError) -> str:
    """What an OSError says, without its path (a file or folder name is free text and could hold anything):
    the OS's words, or the exception's class when it gave none."""
    return exc.strerror or type(exc).__name__


def safe_text(text):
    """What the log may show of a text: national ids masked, then control characters escaped."""
    return escape_controls(mask_national_ids(text))


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
            req = request._get_current_object()  # type: ignore[attr-defined]  # once, not a proxy per field
            record.request_id = g.get("request_id")
            record.method = req.method
            record.path = req.path  # never the query string
            record.remote_addr = req.remote_addr
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


# The attributes every LogRecord has; anything else on a record is an extra (extra={...}, ContextFilter).
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# What NationalIdFilter leaves alone: the record's own attributes, but for the thread's and process's names.
_NOT_CHECKED = _RECORD_ATTRIBUTES - {"threadName", "processName"}


class NationalIdFilter(logging.Filter):
    """Makes a record safe to write as one line: possible national ids masked and control characters
    escaped in the message (with its args), every extra field, the exception text and the stack.

    On the root handler, so it covers every logger that reaches it (ppt.*, werkzeug, rq, gunicorn
    through GunicornLogger, alembic, py.warnings, and any logger added later)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: log what we have
            message = f"{record.msg} {record.args!r}"
        masked = mask_national_ids(message)
        if has_request_context():
            query = request.query_string
            if query:
                masked = masked.replace("?" + query.decode("latin-1"), "?[query]")
        record.msg, record.args = escape_controls(masked), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = escape_controls(mask_national_ids(record.exc_text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = escape_controls(mask_national_ids(record.stack_info), keep_newlines=True)
        fields = record.__dict__
        for key in fields.keys() - _NOT_CHECKED:
            # Extras live in the record's __dict__ (ContextFilter's path, remote_addr, method ...).
            value = fields[key]
            if isinstance(value, str):
                fields[key] = safe_text(value)
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
        for key, value in line.items():
            if isinstance(value, str):
                line[key] = escape_controls(value)  # what the filter did not see (a name, a thread)
        if record.exc_text:
            line["exc"] = escape_controls(record.exc_text, keep_newlines=True)
        if record.stack_info:
            line["stack"] = escape_controls(record.stack_info, keep_newlines=True)
        # json.dumps escapes C0 controls itself, not C1 ones or U+2028/2029: none is left by now, and
        # none may pass unseen.
        return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """The classic line, with the request id and user (or the job) appended when there is one.

    Always one line: a traceback follows the message on the same line, its line breaks written as
    the two characters backslash and n, like every other control character (escape_controls)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))

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
        level = logging.DEBUG if quiet else logging.INFO
        if access.isEnabledFor(level):
            # The record made here, as Logger.log makes it, without its look for the calling frame (always
            # this function; no format of ours shows it).
            access.handle(access.makeRecord(access.name, level, __file__, 0, "%s %s %s %s ms",
                                            (request.method, request.path, status, duration), None, "log_access",
                                            {"status": status, "duration_ms": duration}))

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
