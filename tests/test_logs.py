"""Process logs an operator reads: JSON lines with the request's fields, and never a national id or query."""
from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import uuid

import flask
import pytest

from ppt_web import create_app, logs
from ppt_web.logs import GunicornLogger, mask_national_ids

from . import builders
from .conftest import ROOT, _config, user

FNR = builders.valid_national_id(7)


def json_lines(err: str) -> list[dict]:
    """Every line on stderr parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "ppt.access"]


@pytest.mark.app_config(PPT_LOG_FORMAT="json")
def test_json_lines_carry_the_request_fields(app, client, login_as, capsys):
    """A signed-in page view gives one parseable access line with who, what, how long, and the request id."""
    login_as("radgjevar1")
    capsys.readouterr()
    answer = client.get("/")
    assert answer.status_code == 200
    lines = json_lines(capsys.readouterr().err)
    [line] = access_lines(lines)
    with app.app_context():
        user_id = user("radgjevar1").id
    assert line["level"] == "INFO" and line["method"] == "GET" and line["path"] == "/"
    assert line["status"] == 200 and isinstance(line["duration_ms"], float)
    assert line["user_id"] == user_id and "radgjevar1" not in json.dumps(line)  # the id, never the username
    assert line["request_id"] == answer.headers["X-Request-ID"] and len(line["request_id"]) == 32
    assert line["remote_addr"] == "127.0.0.1" and line["pid"] > 0 and line["process"]
    assert line["ts"].endswith("Z") and line["ts"][:4].isdigit() and "T" in line["ts"]


@pytest.mark.app_config(PPT_LOG_FORMAT="json")
def test_a_sane_request_id_from_the_proxy_is_kept_and_a_strange_one_replaced(client, capsys):
    answer = client.get("/login", headers={"X-Request-ID": "nginx-4f1c2a9e77"})
    assert answer.headers["X-Request-ID"] == "nginx-4f1c2a9e77"
    assert access_lines(json_lines(capsys.readouterr().err))[0]["request_id"] == "nginx-4f1c2a9e77"
    for strange in ("bad id with spaces", "x" * 200, f"req-{FNR}"):
        answer = client.get("/login", headers={"X-Request-ID": strange})
        assert answer.headers["X-Request-ID"] != strange and len(answer.headers["X-Request-ID"]) == 32
    assert FNR not in capsys.readouterr().err


@pytest.mark.app_config(PPT_LOG_FORMAT="json")
def test_no_query_string_is_logged(client, login_as, capsys):
    """A search term in a URL (a name or a national id) never reaches the log."""
    login_as("radgjevar1")
    capsys.readouterr()
    client.get(f"/search/?q={FNR}&name=Nordmann")
    err = capsys.readouterr().err
    assert FNR not in err and "Nordmann" not in err and "q=" not in err
    [line] = access_lines(json_lines(err))
    assert line["path"] == "/search/"


@pytest.mark.app_config(PPT_LOG_FORMAT="json", PROPAGATE_EXCEPTIONS=False)
def test_a_national_id_in_a_message_or_an_exception_is_masked(app, client, login_as, capsys):
    """A careless log call or an error text with a national id shows *********** instead."""

    @app.route("/boom")
    def boom():
        raise ValueError(f"no client with national id {FNR}")

    with app.test_request_context("/"):
        logging.getLogger("ppt_web.somewhere").warning("looked up %s and %s %s", FNR, FNR[:6], FNR[6:])
    login_as("radgjevar1")
    answer = client.get("/boom")
    assert answer.status_code == 500
    err = capsys.readouterr().err
    assert FNR not in err
    lines = json_lines(err)
    warning = next(line for line in lines if line["logger"] == "ppt_web.somewhere")
    assert warning["msg"] == "looked up *********** and ***********"
    error = next(line for line in lines if line["level"] == "ERROR")
    assert "ValueError: no client with national id ***********" in error["exc"]
    assert error["path"] == "/boom" and error["request_id"] == answer.headers["X-Request-ID"]
    assert access_lines(lines)[-1]["status"] == 500


def test_masking_keeps_what_is_not_a_national_id():
    """Short numbers, dates, case numbers and long runs without a valid number stay readable."""
    assert mask_national_ids("case 2025/123, post 17, 2025-06-01T12:00:00") == "case 2025/123, post 17, 2025-06-01T12:00:00"
    assert mask_national_ids("orgnr 974760673 and 12345678901") == "orgnr 974760673 and ***********"
    assert mask_national_ids(f"x{FNR}y") == "x***********y"
    assert mask_national_ids(f"99{FNR}9") == "99***********9"  # a valid number inside a longer run
    assert mask_national_ids("123456789012345") == "123456789012345"


def test_a_uuid_stays_readable_unless_it_holds_a_valid_number():
    """A Fiks IO queue or an RQ job id whose last group happens to hold 11 digits is shown whole (about one
    UUID in 130); a valid number inside one is still masked, and 11 digits glued to a UUID-like text are too."""
    queue = "fiksio.konto.837bb837-1a11-41f0-8319-12345678901d"
    assert mask_national_ids(f"Fiks IO: consuming {queue} again") == f"Fiks IO: consuming {queue} again"
    assert mask_national_ids("job 1A2B3C4D-0000-4000-8000-012345678901 OK") == \
        "job 1A2B3C4D-0000-4000-8000-012345678901 OK"
    assert mask_national_ids(f"job 837bb837-1a11-41f0-8319-{FNR}a") == "job 837bb837-1a11-41f0-8319-***********a"
    assert mask_national_ids("x837bb837-1a11-41f0-8319-12345678901d") == "x837bb837-1a11-41f0-8319-***********d"
    assert mask_national_ids("837bb837-1a11-41f0-8319-12345678901d/12345678901") == \
        "837bb837-1a11-41f0-8319-12345678901d/***********"


def written_as(number: str) -> list[str]:
    """A national id the ways someone may write or a URL may carry it, each masked today."""
    wide = "".join(chr(0xFF10 + int(d)) for d in number)
    return [number, f"{number[:6]} {number[6:]}", f"{number[:6]}-{number[6:]}", f"{number[:6]}.{number[6:]}",
            f"{number[:2]}.{number[2:4]}.{number[4:6]} {number[6:9]} {number[9:]}", f"{number[:6]}\u2013{number[6:]}",
            f"{number[:6]} / {number[6:]}", f"{number[:6]}\n{number[6:]}", f"{number[:6]}\x1b{number[6:]}", wide,
            "".join(f"%3{d}" for d in number), f"{number[:6]}%2F{number[6:]}", f"{number[:6]}\\x1b{number[6:]}"]


def test_the_quick_check_masks_exactly_what_the_full_scan_masks():
    """The shortcut that lets most log fields through untouched (no run of 11 digits and separators, no % or
    backslash) changes nothing: random texts around national ids written every way come out as before."""
    rng = random.Random(20)
    numbers = [builders.valid_national_id(n) for n in range(5)] + ["12345678901"]
    plain = ["a", "f", "x", "u", "/", ".", " ", "-", "_", "+", "\n", "\x1b", "\u2028", "\u2013", ":", "1", "7",
             "2025", "12.05", "\uff13", "ms", "123456", "12345"]
    encoded = [*plain, "%", "%2F", "%33", "\\", "\\x1b"]
    for n in range(6000):
        filler = plain if n % 2 else encoded  # half without % or a backslash: where the shortcut applies
        forms = [form for number in numbers for form in written_as(number)
                 if filler is encoded or ("%" not in form and "\\" not in form)]
        parts = [rng.choice(filler) for _ in range(rng.randint(0, 14))]
        if rng.random() < 0.5:
            parts.insert(rng.randint(0, len(parts)), rng.choice(forms))
        text = "".join(parts)
        assert mask_national_ids(text) == logs._masked(text), text
    for number in numbers[:-1]:  # valid ones (an invalid number is masked only as one run, or 6+5)
        for form in written_as(number):
            masked = mask_national_ids(f"GET /clients/{form}/posts 200")
            assert form not in masked and "***********" in masked, form


@pytest.mark.app_config(PPT_LOG_FORMAT="json")
def test_a_national_id_in_any_field_of_a_line_is_masked(app, capsys):
    """Whatever field carries it (the message, the path, the request id, the address, an extra, the thread's
    name) and however it is written, a national id never reaches the log."""
    forms = written_as(FNR)
    for form in forms:
        with app.test_request_context(f"/clients/{form}", environ_base={"REMOTE_ADDR": form}):
            flask.g.request_id = f"req-{form}"
            thread = threading.current_thread()
            name, thread.name = thread.name, f"worker {form}"
            try:
                logging.getLogger("ppt.access").info("GET %s 200", form, extra={"status": 200, "detail": form})
            finally:
                thread.name = name
    err = capsys.readouterr().err
    lines = [line for line in json_lines(err) if line["logger"] == "ppt.access"]
    assert len(lines) == len(forms)
    for form in forms:
        assert form not in err, form
    for line in lines:
        for field in ("msg", "path", "request_id", "remote_addr", "thread"):
            assert "***********" in line[field], (field, line[field])


def test_text_is_the_default_and_the_access_line_is_there(client, capsys):
    """Without PPT_LOG_FORMAT the lines stay plain text, one per request, with its request id."""
    answer = client.get("/login?next=%2F")
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "ppt.access" in line]
    assert " INFO ppt.access: GET /login 200 " in line
    assert f"request_id={answer.headers['X-Request-ID']}" in line and "next=" not in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_creating_the_app_again_replaces_the_handler(tmp_path, redis_url, databases):
    """Hundreds of create_app() calls (tests, CLI) leave one handler, not hundreds."""
    for _ in range(3):
        create_app(_config(tmp_path / "instance", databases.template, redis_url, PPT_LOG_FORMAT="json"))
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_ppt", False)]
    assert len(ours) == 1


def test_a_wrong_log_format_stops_the_start(tmp_path, redis_url, databases):
    with pytest.raises(ValueError, match="PPT_LOG_FORMAT"):
        create_app(_config(tmp_path / "instance", databases.template, redis_url, PPT_LOG_FORMAT="xml"))


def test_gunicorn_lines_become_ours_and_its_access_log_stays_off(monkeypatch, capsys):
    """gunicorn --logger-class ppt_web.logs.GunicornLogger: its boot lines are JSON, no access lines of its own."""
    from gunicorn.config import Config

    monkeypatch.setenv("PPT_LOG_FORMAT", "json")
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = GunicornLogger(cfg)
    logger.info("Booting worker with pid: %s", 4242)
    logger.access(None, None, {"QUERY_STRING": f"q={FNR}"}, None)
    [line] = json_lines(capsys.readouterr().err)
    assert line["logger"] == "gunicorn.error" and line["msg"] == "Booting worker with pid: 4242"
    assert not logger.access_log_enabled


@pytest.mark.slow
@pytest.mark.one_database  # log formatting; the job touches no table
@pytest.mark.app_config(PPT_QUEUE_NAME=f"logs-{uuid.uuid4().hex[:8]}")
def test_the_worker_and_rq_log_json_lines_with_the_job(app, ctx):
    """python worker.py with PPT_LOG_FORMAT=json: RQ's own lines are JSON too, and a job's lines name it."""
    from ppt_web.queue import get_queue

    from .helpers import worker_env

    job = get_queue().enqueue(logging.warning, "inside the job")  # any function that logs while it runs
    done = subprocess.run([sys.executable, str(ROOT / "worker.py"), "--burst"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**worker_env(app), "PPT_LOG_FORMAT": "json"})
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stderr)
    assert any(line["logger"] == "rq.worker" and job.id in line["msg"] for line in lines)
    [inside] = [line for line in lines if line["msg"] == "inside the job"]
    assert inside["job_id"] == job.id and inside["job_func"] == "logging.warning"
