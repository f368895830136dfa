"""Readiness and metrics for the load balancer and monitoring: what an operator watches."""
from __future__ import annotations

import uuid

import pytest

from ppt_web.extensions import db

from . import builders

pytestmark = pytest.mark.app_config(PPT_QUEUE_NAME=f"health-{uuid.uuid4().hex[:8]}")


def test_readyz_names_what_is_missing_and_turns_ready_with_a_worker(app, client):
    from rq import Worker

    from ppt_web.queue import get_queue, worker_connection

    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json["checks"] == {"database": "ok", "redis": "ok", "archive": "ok",
                                     "worker": "no worker listens on the queue"}
    with app.app_context():
        worker = Worker([get_queue()], connection=worker_connection(), name=f"health-{uuid.uuid4().hex[:6]}")
        worker.register_birth()
    try:
        answer = client.get("/readyz")
        assert answer.status_code == 200 and answer.json["status"] == "ready"
        # Killed without a goodbye: its name stays in RQ's set, but once its key has run out it
        # no longer counts.
        with app.app_context():
            worker_connection().delete(worker.key)
        answer = client.get("/readyz")
        assert answer.status_code == 503 and answer.json["checks"]["worker"] == "no worker listens on the queue"
    finally:
        worker.register_death()


@pytest.mark.app_config(PPT_REDIS_URL="unix:///nonexistent/redis.sock")
def test_readyz_says_when_redis_is_away(client):
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json["checks"]["redis"] != "ok"
    assert answer.json["checks"]["database"] == "ok"


def test_metrics_count_jobs_and_hold_no_personal_data(app, client):
    with app.app_context():
        case = builders.case()
        builders.finalized_post(case, title="Notat")
        national_id, name = case.client.national_id, case.client.family_name
        db.session.remove()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ppt_archive_jobs{archive_status="new",job_status="new"} 2.0' in text  # case folder + post
    assert "ppt_queue_depth" in text and "ppt_approvals_waiting 0.0" in text
    assert "ppt_redis_up 1.0" in text and "ppt_database_up 1.0" in text
    assert national_id not in text and name not in text


@pytest.mark.app_config(PPT_METRICS_TOKEN="hemmeleg")
def test_metrics_behind_a_token_when_one_is_set(client):
    """With a token, everyone shows it, the host itself too; a wrong or missing one is 401."""
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers.get("WWW-Authenticate") == "Bearer"
    for wrong in ("Bearer feil", "Bearer ", "hemmeleg", "Basic aGVtbWVsZWc=", "Bearer hemmeleg2", "bearer  hemmelegx"):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401, wrong
    assert client.get("/metrics", headers={"Authorization": "Bearer hemmeleg"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer hemmeleg"},
                      environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_metrics_without_a_token_answer_only_the_host_itself(client):
    """PPT_METRICS_TOKEN unset: a scrape from the host itself (127.0.0.1, ::1) is answered; any other
    address, or a request that came through a proxy the app does not trust, gets 404."""
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    for remote in ("10.1.2.3", "192.168.0.7", "2001:db8::1", "", "not an address"):
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": remote}).status_code == 404, remote
    # nginx on the same host: the connection is from 127.0.0.1, the client is whoever it forwards.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        assert client.get("/metrics", headers={header: "203.0.113.9"}).status_code == 404, header
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"},
                      environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 404


@pytest.mark.app_config(PPT_TRUSTED_PROXIES=1)
def test_metrics_without_a_token_behind_a_trusted_proxy_go_by_the_forwarded_address(client):
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}).status_code == 404


@pytest.mark.app_config(PPT_REDIS_URL="unix:///nonexistent/redis.sock")
def test_metrics_say_redis_is_down_instead_of_failing(app, client):
    """Redis away: 200 with the database's counts, ppt_redis_up 0, and no queue depth (unknown, not 0)."""
    with app.app_context():
        builders.case()
        db.session.remove()
    answer = client.get("/metrics")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "ppt_redis_up 0.0" in text and "ppt_database_up 1.0" in text
    assert 'ppt_archive_jobs{archive_status="new",job_status="new"} 1.0' in text
    assert "ppt_queue_depth" not in text
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["redis"] != "ok"
    assert client.get("/healthz").status_code == 200


def test_metrics_say_the_database_is_down_instead_of_failing(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from ppt_web.main import health

    def broken():
        raise OperationalError("SELECT", {}, Exception("database away"))

    monkeypatch.setitem(health.PARTS, "database", broken)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "ppt_database_up 0.0" in text and "ppt_redis_up 1.0" in text and "ppt_queue_depth" in text
    assert "ppt_archive_jobs{" not in text
