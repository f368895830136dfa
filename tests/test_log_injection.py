"""Log injection and national ids on every logger: each record is one line, with no raw control
character and no valid national id in any shape, in both formats (text and JSON).

The inputs are what an outsider or a careless call can put in a record: control characters that
would start a forged line or steer a terminal, and valid fødselsnumre and D-numbers (checked with
python-stdnum) written whole, split by / _ space . - or a control character, percent-encoded
(%2F, %252F, %3x digits), in full-width digits, and inside longer runs of digits.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import date
from urllib.parse import quote

import pytest
from stdnum.no import fodselsnummer

from ppt_web.logs import FORMATS, GunicornLogger, configure

# Every logger the app, the worker and the CLI write through (the root handler serves them all).
pytestmark = pytest.mark.one_database  # engine-independent: CI runs it on one database


LOGGERS = ("ppt.access", "ppt.worker", "ppt_web.postreg.sync_intake", "ppt_web.archive.sending", "werkzeug",
           "rq.worker", "rq.queue", "gunicorn.error", "alembic.runtime.migration", "flask_migrate", "py.warnings",
           "sqlalchemy.engine", "root")


def _national_id(born: date, individual: int, d_number: bool = False) -> str:
    """A valid fødselsnummer (or D-number: the day plus 40), by stdnum's check digits."""
    for step in range(1000):
        ind = (individual + step) % 1000
        if born.year >= 2000 and ind < 500:
            continue
        if born.year < 2000 and ind >= 500:
            continue
        day = born.day + (40 if d_number else 0)
        stem = f"{day:02d}{born:%m%y}{ind:03d}"
        stem += fodselsnummer.calc_check_digit1(stem)
        if len(stem) == 10 and stem[-1].isdigit():
            number = stem + fodselsnummer.calc_check_digit2(stem)
            if number[-1].isdigit() and fodselsnummer.is_valid(number):
                return number
    raise AssertionError("no valid number")


IDS = (_national_id(date(2012, 3, 4), 512), _national_id(date(2009, 11, 30), 777),
       _national_id(date(1987, 1, 2), 123), _national_id(date(2015, 6, 7), 600, d_number=True),
       _national_id(date(1990, 12, 24), 45, d_number=True))
assert all(fodselsnummer.is_valid(n) for n in IDS) and IDS[3][0] in "4567"


def _shapes(number: str) -> list[str]:
    a, b = number[:6], number[6:]
    return [number, f"/clients/{a}/{b}", f"{a}/{b}", f"{a}_{b}", f"{a} {b}", f"{a}%2F{b}", f"{a}%2f{b}",
            f"{a}%252F{b}", f"{a}%20{b}", f"{a}.{b}", f"{a}-{b}", f"{a[:2]}.{a[2:4]}.{a[4:]}-{b}",
            f"{a[:2]}-{a[2:4]}-{a[4:]} {b}", f"{a} / {b}", f"{a}\n{b}", f"{a}\r\n{b}", f"{a}\t{b}", f"{a}\x1b{b}",
            f"{a}\u2028{b}", f"{a}\\n{b}", f"{number[:3]} {number[3:6]} {number[6:9]} {number[9:]}",
            "".join(chr(0xFF10 + int(c)) for c in number), "".join(f"%3{c}" for c in number),
            f"99{number}7", f"x{a}/{b}y", f"/post-registration/{a}_{b}.pdf", f"case 2026/17 of {a} {b}"]


CONTROLS = ["/x\n2026-01-01 00:00:00,000 INFO ppt.access: FORGED", "/x\r2026-01-01 FORGED", "\r\n{\"level\": \"INFO\"}",
            "\x1b[2J\x1b[31mred\x1b[0m", "nul\x00byte", "del\x7f", "nel\x85c1\x9b", "ls\u2028ps\u2029",
            "vt\x0bff\x0cfs\x1cgs\x1drs\x1e", "bidi\u202egnp.exe\u2066x\u2069", "bom\ufeff", "tab\there"]
INPUTS = CONTROLS + [shape for number in IDS for shape in _shapes(number)]

_RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def _digits(line: str) -> str:
    """The digits a reader sees in a line, with escapes and separators taken out and encodings undone."""
    line = re.sub(r"\\+(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[nrt])", "", line)
    line = re.sub(r"%(?:25)*3([0-9])", r"\1", line)
    line = re.sub(r"%(?:25)*[0-9A-Fa-f]{2}", "", line)
    return "".join(str(unicodedata.digit(c)) for c in line if unicodedata.digit(c, None) is not None)


class Checked:
    """Counts what was checked, and the leaks found (each kept for the failure message)."""

    def __init__(self):
        self.records = self.lines = 0
        self.leaks: list[str] = []

    def lines_of(self, err: str, records: int, log_format: str) -> list[str]:
        assert err.endswith("\n") or not err
        lines = err[:-1].split("\n") if err else []
        assert len(lines) == records, f"{records} records gave {len(lines)} lines:\n{err[:3000]}"
        self.records += records
        for line in lines:
            self.lines += 1
            assert line.splitlines() == [line], f"a line breaks where a reader splits it: {line!r}"
            if _RAW_CONTROL.search(line):
                self.leaks.append(f"raw control character: {line!r}")
            digits = _digits(line)
            self.leaks += [f"national id: {line!r}" for number in IDS if number in digits]
            if log_format == "json":
                parsed = json.loads(line)
                for key, value in parsed.items():
                    if isinstance(value, str) and key not in ("exc", "stack") and _RAW_CONTROL.search(value):
                        self.leaks.append(f"raw control character in {key}: {line!r}")
        return lines


@pytest.fixture
def checked():
    return Checked()


def _emit(logger: logging.Logger, hostile: str) -> int:
    """Every way a text reaches a record: in the message, as an argument, as extra fields, in an
    exception's text and a stack. Returns how many records."""
    logger.error("looked at %s", hostile)
    logger.error(f"inline {hostile} text")  # noqa: G004 - a careless call is one of the inputs
    logger.error("extras", extra={"path": hostile, "remote_addr": hostile, "method": hostile, "job_id": hostile,
                                  "request_id": hostile, "user_id": hostile})
    try:
        raise ValueError(f"no such {hostile}")
    except ValueError:
        logger.exception("failed on %r", hostile)
    logger.error("where %s", hostile, stack_info=True)
    return 5


@pytest.mark.parametrize("log_format", FORMATS)
def test_every_logger_writes_one_clean_line_per_record(log_format, checked, capsys, monkeypatch):
    monkeypatch.setenv("PPT_LOG_FORMAT", log_format)
    configure(log_format, "INFO")
    gunicorn = GunicornLogger.__new__(GunicornLogger)  # its own loggers, set up as gunicorn does
    from gunicorn.config import Config

    gunicorn.__init__(Config())
    configure(log_format, "INFO")
    capsys.readouterr()
    for name in LOGGERS:
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        for hostile in INPUTS:
            records = _emit(logger, hostile)
            checked.lines_of(capsys.readouterr().err, records, log_format)
    for hostile in INPUTS:  # gunicorn's own methods (boot, worker timeouts)
        gunicorn.error("worker %s", hostile)
        gunicorn.warning(f"timeout {hostile}")  # noqa: G004
        checked.lines_of(capsys.readouterr().err, 2, log_format)
    print(f"\n{log_format}: {len(LOGGERS) + 1} loggers x {len(INPUTS)} inputs: {checked.records} records, "
          f"{checked.lines} lines checked, {len(checked.leaks)} leaks")
    assert not checked.leaks, "\n".join(checked.leaks[:20])


@pytest.mark.parametrize("app", [{"PPT_LOG_FORMAT": f, "PPT_LOG_LEVEL": "DEBUG", "PPT_TRUSTED_PROXIES": 1}
                                 for f in FORMATS], indirect=True, ids=FORMATS)
def test_the_access_line_of_a_hostile_request_is_one_clean_line(app, client, checked, capsys):
    """Unauthenticated requests with hostile paths, query strings and headers (User-Agent, Referer,
    X-Forwarded-For, X-Request-ID): every line they cause is one line, clean, without an id."""
    log_format = app.config["PPT_LOG_FORMAT"]
    capsys.readouterr()
    requests = 0
    for hostile in INPUTS:
        as_sent, encoded = quote(hostile, safe="/%"), quote(hostile, safe="")  # the server decodes PATH_INFO
        for path in (f"/x{as_sent}", f"/clients/{encoded}", f"/static/{as_sent}", f"/metrics/{encoded}"):
            client.get(path, query_string={"q": hostile},
                       headers={"User-Agent": hostile.replace("\n", " ").replace("\r", " "),
                                "Referer": f"https://example.org/{hostile}".replace("\n", "%0A").replace("\r", "%0D"),
                                "X-Forwarded-For": hostile.replace("\n", "").replace("\r", "").replace(",", " "),
                                "X-Request-ID": hostile.replace("\n", "").replace("\r", "")})
            requests += 1
        client.open(f"/x/{encoded}", method="GE\x1bT")
        requests += 1
        err = capsys.readouterr().err
        lines = checked.lines_of(err, err.count("\n"), log_format)
        assert sum("ppt.access" in line for line in lines) == 5, err  # /static/ ones at DEBUG
    print(f"\n{log_format}: ppt.access x {len(INPUTS)} inputs: {requests} requests, "
          f"{checked.lines} lines checked, {len(checked.leaks)} leaks")
    assert not checked.leaks, "\n".join(checked.leaks[:20])


def test_the_forged_line_of_the_finding_stays_inside_its_own(client, capsys):
    """GET /x%0A2026-01-01 ... INFO ppt.access: FORGED gives one line, with the break written as \\n."""
    capsys.readouterr()
    client.get("/x%0A2026-01-01%2000:00:00,000%20INFO%20ppt.access:%20FORGED%0D%1B[31m")
    [line] = capsys.readouterr().err.splitlines()
    assert "GET /x\\n2026-01-01 00:00:00,000 INFO ppt.access: FORGED\\r\\x1b[31m 404 " in line
