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
    assert national_id not in text and name not in text


@pytest.mark.app_config(PPT_METRICS_TOKEN="hemmeleg")
def test_metrics_behind_a_token_when_one_is_set(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer feil"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer hemmeleg"}).status_code == 200
