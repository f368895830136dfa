"""Archive sending: outbox rows with the change, order within a case, the three transports,
the status mapping of SPEC §10, and idempotency."""
from __future__ import annotations

import socket
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ppt_web.archive import actions
from ppt_web.archive import sending as archive
from ppt_web.archive.transports.local import LocalArchive
from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clock import utcnow
from ppt_web.errors import Invalid
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .archive_server import ArchiveServer
from .conftest import user
from .helpers import stored_count


def jobs(**where) -> list[ArchiveJob]:
    query = select(ArchiveJob).order_by(ArchiveJob.id)
    for key, value in where.items():
        query = query.where(getattr(ArchiveJob, key) == value)
    return list(db.session.scalars(query))


def run_all() -> None:
    """What the worker does, in-process: process every job until nothing changes."""
    for _ in range(10):
        pending = [j.id for j in jobs(job_status="new")]
        if not pending:
            return
        for job_id in pending:
            db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job_id).values(next_attempt_at=None))
            db.session.commit()
            archive.process(job_id, "test")


def local(app) -> LocalArchive:
    return LocalArchive(app.config["PPT_LOCAL_ARCHIVE_DIR"])


def test_outbox_rows_commit_with_the_change_and_only_when_the_criteria_hold(ctx):
    case = builders.case()
    draft = builders.post(case, title="Utkast")
    assert [j.event for j in jobs()] == ["case_created"]  # a draft is not archived
    done = posts.finalize(user("radgjevar1"), draft.id)
    created, finalized = jobs()
    assert finalized.event == "post_finalized" and finalized.post_id == done.id and finalized.after_job_id == created.id
    assert finalized.job_status == "new" and finalized.archive_status == "new" and len(finalized.message_id) == 36
    admin_case = cases.register_case(user("konsulent"), cases.CaseData(kind="administration", title="Budsjett"))
    assert not jobs(case_id=admin_case.id)  # no national id, no organisation number: not archived


def test_a_failed_finalize_leaves_no_job(ctx):
    case = builders.case()
    draft = posts.create_post(user("radgjevar1"), case.id, posts.PostData(post_type="I"))
    with pytest.raises(Invalid):  # nothing to finalize yet: no title, sender, date or document
        posts.finalize(user("radgjevar1"), draft.id)
    assert [j.event for j in jobs()] == ["case_created"]


def test_local_archive_end_to_end_in_order(app, ctx):
    case = builders.case()
    post = builders.finalized_post(case, post_type="I", correspondent="Ulstein skule", title="Tilvising")
    post_job = jobs(event="post_finalized")[0]
    assert archive.process(post_job.id, "test") == "waiting"  # the case folder first
    assert "Ventar på" in db.session.get(ArchiveJob, post_job.id).message
    run_all()
    for job in jobs():
        assert (job.job_status, job.archive_status) == ("done", "archived"), job.message
    case_job, post_job = jobs()
    assert case_job.archive_ref["mappe"]["sakssekvensnummer"] == 1  # the archive's own numbers
    assert post_job.archive_ref["registrering"]["journalpostnummer"] == 1
    assert len(local(app).messages_for(f"post:{post.id}")) == 1
    held = local(app).archive.files_of(f"post:{post.id}")
    assert [f["sha256"] for f in held] == [post.documents[0].sha256]
    assert stored_count(local(app)) == 2


def test_local_archive_stores_once_per_klientmelding_id(app, ctx):
    builders.finalized_post(builders.case(), title="Notat")
    run_all()
    job = jobs(event="post_finalized")[0]
    from ppt_web.archive.message import build

    again = local(app).send(build(job), job.message_id)
    assert again.kind == "ok" and again.ids == job.archive_ref
    assert stored_count(local(app)) == 2


def test_closing_writing_off_and_correcting_reach_the_archive(ctx):
    case = builders.case()
    incoming = builders.finalized_post(case, post_type="I", correspondent="Skule", title="Spørsmål")
    posts.write_off(user("radgjevar1"), incoming.id, "TE")
    posts.correct_metadata(user("konsulent"), incoming.id, "Skrivefeil", posts.PostData(
        post_type="I", title="Spørsmål frå skulen", document_date=incoming.document_date,
        correspondents=[posts.CorrespondentData(name="Skule")]))
    cases.close_case(user("radgjevar1"), case.id)
    cases.reopen_case(user("radgjevar1"), case.id)
    run_all()
    assert [j.event for j in jobs()] == ["case_created", "post_finalized", "post_written_off", "metadata_corrected",
                                         "case_closed", "case_reopened"]
    assert {(j.job_status, j.archive_status) for j in jobs()} == {("done", "archived")}


@pytest.fixture
def http_archive(app):
    with ArchiveServer() as server:
        app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=server.url, PPT_ARCHIVE_HTTP_TIMEOUT=1,
                          PPT_ARCHIVE_MAX_ATTEMPTS=3)
        yield server


@pytest.mark.parametrize("mode, job_status, archive_status, words", [
    ("ok", "done", "archived", "Arkivert"),
    ("invalid", "done", "failed", "Manglar tittel"),
    ("not_found", "done", "failed", "Fann ikkje saksmappa"),
    ("server_error", "new", "failed", "Forsøk 1 av 3"),
    ("slow", "new", "failed", "tidsavbrot"),
])
def test_http_replies_map_to_statuses(ctx, http_archive, mode, job_status, archive_status, words):
    builders.case()
    http_archive.mode = mode
    job = jobs()[0]
    archive.process(job.id, "test")
    job = db.session.get(ArchiveJob, job.id)
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == (job_status, archive_status)
    assert words in job.message


def test_http_multipart_carries_the_payload_and_files_with_the_job_uuid(ctx, http_archive):
    post = builders.finalized_post(builders.case(), post_type="N", title="Notat")
    run_all()
    post_job = jobs(event="post_finalized")[0]
    arrived = http_archive.stored[post_job.message_id]
    assert arrived["meldingstype"] == "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
    names = list(arrived["parts"])
    assert names[0] == "arkivmelding.xml" and len(names) == 2
    assert list(arrived["parts"].values())[1] == Path(
        __import__("ppt_web.files.storage", fromlist=["file_path"]).file_path(post.documents[0].sha256)).read_bytes()


def test_http_refused_connection_retries_then_gives_up(app, ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config.update(PPT_ARCHIVE_BACKEND="http", PPT_ARCHIVE_HTTP_URL=f"http://127.0.0.1:{port}/x",
                      PPT_ARCHIVE_MAX_ATTEMPTS=2)
    builders.case()
    job_id = jobs()[0].id
    archive.process(job_id, "test")
    job = db.session.get(ArchiveJob, job_id)
    assert (job.job_status, job.archive_status, job.attempts) == ("new", "failed", 1)
    assert "fekk ikkje kontakt" in job.message and job.next_attempt_at > utcnow()
    assert archive.process(job_id, "test") == "not claimed"  # not due yet: backoff holds
    job.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    archive.process(job_id, "test")
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "failed") and "Gav opp etter 2" in job.message


def test_http_reply_lost_after_store_then_retry_stores_once(ctx, http_archive):
    """The archive stored the document but the reply was an error: the retry reuses the id."""
    builders.case()
    job_id = jobs()[0].id
    http_archive.mode = "store_then_fail"
    archive.process(job_id, "test")
    http_archive.mode = "ok"
    run_all()
    assert len(http_archive.stored) == 1 and http_archive.requests == 2
    assert db.session.get(ArchiveJob, job_id).archive_status == "archived"


@pytest.fixture
def folder(app, tmp_path):
    root = tmp_path / "link"
    app.config.update(PPT_ARCHIVE_BACKEND="folder", PPT_ARCHIVE_FOLDER=str(root), PPT_ARCHIVE_REPLY_HOURS=1)
    return root


def _reply(root: Path, job: ArchiveJob, kind: str, body: bytes) -> None:
    folder = root / "inn" / job.message_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job.operation}.{kind}.xml").write_bytes(body)


def test_folder_transport_hands_over_and_reads_late_replies(ctx, folder):
    from ppt_web.archive import replies

    builders.case()
    job = jobs()[0]
    assert archive.process(job.id, "test") == "handed over"
    out = folder / "ut" / job.message_id
    assert (out / "melding.json").exists() and (out / "arkivmelding.xml").exists()
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("in_progress", "new")
    archive.sweep()
    assert db.session.get(ArchiveJob, job.id).job_status == "in_progress"  # nothing back yet
    _reply(folder, job, "mottatt", b"")
    archive.sweep()
    assert db.session.get(ArchiveJob, job.id).job_status == "in_progress"  # received is not final
    from ppt_web.archive.message import build

    _reply(folder, job, "kvittering", replies.kvittering(job.operation, build(job), {"mappe": {"systemID": str(uuid.uuid4())}}))
    archive.sweep()
    job = db.session.get(ArchiveJob, job.id)
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "archived")


def test_folder_transport_error_reply_and_missing_reply(ctx, folder):
    from ppt_web.archive import replies

    builders.case()
    builders.case()
    first, second = jobs()
    archive.process(first.id, "test")
    archive.process(second.id, "test")
    _reply(folder, first, "ugyldigforespoersel", replies.feilmelding(replies.UGYLDIGFORESPOERSEL, "Ukjend arkivdel"))
    archive.sweep(now=utcnow() + timedelta(hours=2))  # past the reply deadline for the second
    first, second = (db.session.get(ArchiveJob, j.id) for j in (first, second))
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.job_status, first.archive_status) == ("done", "failed") and "Ukjend arkivdel" in first.message
    assert (second.job_status, second.archive_status) == ("done", "failed") and "Ingen kvittering" in second.message


def test_sweep_reclaims_expired_leases(ctx):
    builders.case()
    job = jobs()[0]
    assert archive.claim(job.id, "crashed-worker")
    assert not archive.claim(job.id, "second-worker")  # one claimant only
    archive.sweep(now=utcnow() + timedelta(hours=1))
    db.session.refresh(job)
    assert job.job_status == "new" and "stoppa" in job.message


def test_local_archive_refuses_a_post_whose_case_it_does_not_hold(app, ctx):
    """Answers ikkefunnet, as the http contract says, and stores nothing."""
    from ppt_web.archive.message import build

    builders.finalized_post(builders.case(), title="Notat")
    post_job = jobs(event="post_finalized")[0]
    reply = local(app).send(build(post_job), post_job.message_id)
    assert reply.kind == "not_found" and "case:" in reply.text and reply.text.startswith("arkivet fann ikkje")
    assert stored_count(local(app)) == 0
    run_all()
    assert {j.archive_status for j in jobs()} == {"archived"}


def test_an_unexpected_error_is_shown_on_the_log_not_left_in_progress(app, ctx, monkeypatch):
    builders.case()
    job_id = jobs()[0].id

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(archive, "build", broken)
    assert archive.process(job_id, "test") == "internal error"
    job = db.session.get(ArchiveJob, job_id)
    assert (job.job_status, job.archive_status) == ("done", "failed") and "Intern feil" in job.message


def test_retry_does_not_overwrite_a_worker_that_holds_the_job(ctx):
    builders.case()
    job = jobs()[0]
    job.job_status, job.archive_status = "new", "failed"  # waiting for its back-off
    db.session.commit()
    assert archive.claim(job.id, "worker-1")  # a worker takes it just now...
    actions.retry(user("konsulent"), job.id)  # ...as the consultant clicks Prøv på nytt
    db.session.refresh(job)
    assert job.job_status == "in_progress" and job.claimed_by == "worker-1"


def test_local_archive_stores_a_message_whole_or_not_at_all(app, ctx, monkeypatch):
    """A failure after the archive took the folder in but before its reply was stored rolls it all back:
    the worker's retry then creates the folder once."""
    from ppt_web.archive import replies
    from ppt_web.archive.message import build

    builders.case()
    case_job = jobs()[0]
    real = replies.kvittering

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(replies, "kvittering", crash)
    failed = local(app).send(build(case_job), case_job.message_id)
    assert failed.kind == "server_error"  # retried later with back-off, as a 5xx over http is
    assert stored_count(local(app)) == 0
    monkeypatch.setattr(replies, "kvittering", real)
    again = local(app).send(build(case_job), case_job.message_id)  # the worker's retry after the crash
    assert again.kind == "ok" and again.ids["mappe"]["opprettetEllerEksisterende"] == "Opprettet"
    assert again.ids["mappe"]["sakssekvensnummer"] == 1
    builders.finalized_post(db.session.get(ArchiveJob, case_job.id).case, title="Notat")
    run_all()
    assert {j.archive_status for j in jobs()} == {"archived"}


def test_a_case_without_its_folder_job_gets_one_first(ctx):
    """Cases from before the outbox (or a job deleted by hand): the saksmappe is sent first."""
    case = builders.case()
    db.session.execute(ArchiveJob.__table__.delete())
    db.session.commit()
    builders.finalized_post(case, title="Notat")
    assert [j.event for j in jobs()] == ["case_created", "post_finalized"]
    run_all()
    assert {j.archive_status for j in jobs()} == {"archived"}


def test_sweep_does_not_flood_the_queue_with_notices_it_sent_lately(ctx):
    from ppt_web.queue import get_queue

    app_queue = get_queue()
    app_queue.empty()
    db.session.execute(ArchiveJob.__table__.delete())
    db.session.commit()
    builders.case()
    app_queue.empty()  # the notice after commit: as if Redis had lost it
    db.session.execute(ArchiveJob.__table__.update().values(notified_at=None))
    db.session.commit()
    assert archive.sweep()["queued"] == 1
    assert archive.sweep()["queued"] == 0  # told a moment ago: not again
    assert archive.sweep(now=utcnow() + timedelta(minutes=5))["queued"] == 1  # still not done: told again


def test_a_job_another_process_is_claiming_is_skipped_not_waited_for(app, ctx):
    """Two workers on one job: while the first holds the row, the second moves on at once (PostgreSQL:
    FOR UPDATE SKIP LOCKED; SQLite: the single writer's lock, then the conditional UPDATE loses)."""
    import time

    from sqlalchemy import create_engine, text

    builders.case()
    job = jobs()[0]
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT id FROM archive_job WHERE id = :id FOR UPDATE"), {"id": job.id})
                started = time.monotonic()
                assert not archive.claim(job.id, "second-worker")
                assert time.monotonic() - started < 2  # not queued behind the other transaction
                conn.rollback()
            else:
                conn.execute(text("UPDATE archive_job SET job_status = 'in_progress' WHERE id = :id"), {"id": job.id})
                conn.commit()
                assert not archive.claim(job.id, "second-worker")
                conn.execute(text("UPDATE archive_job SET job_status = 'new' WHERE id = :id"), {"id": job.id})
                conn.commit()
    finally:
        other.dispose()
    assert archive.claim(job.id, "second-worker")  # free again: now it is this worker's
    db.session.refresh(job)
    assert job.job_status == "in_progress" and job.claimed_by == "second-worker" and job.attempts == 1


def _case_with_two_posts() -> tuple[int, int, int]:
    """A case's job and the jobs of two posts after it, each waiting for the one before (their ids)."""
    case = builders.case()
    for n in range(2):
        posts.finalize(user("radgjevar1"), builders.post(case, title=f"Dokument {n}").id)
    first, second, third = (j.id for j in jobs())
    assert (db.session.get_one(ArchiveJob, second).after_job_id, db.session.get_one(ArchiveJob, third).after_job_id) \
        == (first, second)
    return first, second, third


def test_a_job_waits_for_the_one_before_and_says_when_that_one_failed(ctx):
    first, second, _ = _case_with_two_posts()
    assert archive.process(second, "w1") == "waiting"
    job = db.session.get_one(ArchiveJob, second)
    assert (job.message_code, job.message_params["job"], job.job_status) == ("waiting", first, "new")

    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id.in_([first, second]))
                       .values(job_status="done", archive_status="failed"))
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == second)
                       .values(job_status="new", archive_status="new", next_attempt_at=None))
    db.session.commit()
    assert archive.process(second, "w1") == "waiting"
    db.session.expire_all()
    job = db.session.get_one(ArchiveJob, second)
    assert (job.message_code, job.message_params["job"]) == ("waiting_failed", first)


def test_a_deleted_job_holds_nobody_up_the_one_before_it_does(ctx):
    first, second, third = _case_with_two_posts()
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == second).values(deleted_at=utcnow()))
    db.session.commit()
    assert archive.process(third, "w1") == "waiting"  # on the case's job, past the deleted one
    db.session.expire_all()
    assert db.session.get_one(ArchiveJob, third).message_params["job"] == first

    assert archive.process(first, "w1") == "archived"
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == third).values(next_attempt_at=None))
    db.session.commit()
    assert archive.process(third, "w1") == "archived"
