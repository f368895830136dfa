"""The app's side of Fiks IO, in-process: a send hands the job over and keeps Fiks IO's message id;
each reply the consumer delivers (mottatt, kvittering, the archive's errors, Fiks IO's own notices)
does to the job what the archive log promises, once; a reply for no job changes nothing."""
from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ppt_web.archive import fiksio, replies
from ppt_web.archive import sending as archive
from ppt_web.archive.transports import fiksio as fiksio_transport
from ppt_web.cases import posts
from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.fiksio.amqp import Received
from ppt_web.fiksio.client import FiksIoError, Sent
from ppt_web.models import ArchiveJob

from . import builders
from .conftest import user

ARCHIVE = str(uuid.uuid4())


class FakeClient:
    """Fiks IO's send API as the transport sees it: each send accepted with a new melding-id, or refused."""

    def __init__(self):
        self.sent: list[dict] = []
        self.refuse: FiksIoError | None = None
        self.settings = None

    def send(self, recipient, meldingstype, files, **kwargs):
        if self.refuse is not None:
            raise self.refuse
        melding_id = str(uuid.uuid4())
        self.sent.append(dict(recipient=recipient, meldingstype=meldingstype, files=files, melding_id=melding_id,
                              **kwargs))
        return Sent(melding_id)


@pytest.fixture
def fake(app):
    app.config["PPT_ARCHIVE_BACKEND"] = "fiksio"
    client = FakeClient()
    transport = fiksio_transport.FiksIoTransport(settings=SimpleNamespace(ttl_ms=3_600_000),  # type: ignore[arg-type]
                                                 archive_account=ARCHIVE, client=client)  # type: ignore[arg-type]
    app.extensions[fiksio_transport.EXTENSION] = (os.getpid(), transport)
    return client


def job_of(event: str) -> ArchiveJob:
    return db.session.scalars(select(ArchiveJob).where(ArchiveJob.event == event).order_by(ArchiveJob.id)).first()


def reply(job: ArchiveJob, meldingstype: str, *, svar_til: str | None = "stored", korrelasjon: str | None = None,
          body: bytes = b"", redelivered: bool = False) -> Received:
    return Received(melding_id=str(uuid.uuid4()), meldingstype=meldingstype, avsender_id=ARCHIVE,
                    svar_til=job.fiksio_message_id if svar_til == "stored" else svar_til,
                    klient_korrelasjons_id=korrelasjon, body=body, redelivered=redelivered)


def handed_over_case(fake) -> ArchiveJob:
    builders.case()
    job = job_of("case_created")
    assert archive.process(job.id, "test") == "handed over"
    db.session.refresh(job)
    return job


def test_a_send_hands_the_job_over_with_its_stable_id_and_keeps_fiks_ios_message_id(ctx, fake):
    job = handed_over_case(fake)
    sent = fake.sent[0]
    assert sent["recipient"] == ARCHIVE and sent["meldingstype"].endswith("arkivmelding.opprett")
    assert sent["klient_melding_id"] == job.message_id == sent["klient_korrelasjons_id"]
    assert sent["files"][0][0] == "arkivmelding.xml" and sent["ttl_ms"] == 3_600_000
    assert job.fiksio_message_id == sent["melding_id"]
    assert (job.job_status, job.archive_status, job.message_code) == ("in_progress", "new", "handed_over")
    assert job.reply_deadline is not None and job.lease_until is None


def test_mottatt_shows_then_the_receipt_archives_once_and_a_redelivery_changes_nothing(ctx, fake):
    job = handed_over_case(fake)
    assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.mottatt")) == "received"
    db.session.refresh(job)
    assert job.message_code == "received" and job.received_at is not None and job.job_status == "in_progress"
    assert "mottatt" in job.message.lower()
    receipt = reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering")
    assert fiksio.handle(receipt) == "archived"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "archived")
    done_at = job.done_at
    receipt.redelivered = True
    assert fiksio.handle(receipt) == "already done"
    assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.feilmelding.serverfeil",
                               body=b"")) == "already done"
    db.session.refresh(job)
    assert (job.archive_status, job.done_at) == ("archived", done_at)


@pytest.mark.parametrize("meldingstype, body, words", [
    ("no.ks.fiks.kvittering.tidsavbrudd", b"", "tidsavbrot"),
    ("no.ks.fiks.kvittering.serverfeil.v1",
     json.dumps({"errorId": "e1", "feilmelding": "Mottakar har ikkje kvittert", "correlationId": None}).encode(),
     "Mottakar har ikkje kvittert"),
    ("no.ks.fiks.io.feilmelding.serverfeil", b"", "tre gonger"),
])
def test_fiks_ios_own_notices_put_the_job_in_feil_with_a_plain_reason(ctx, fake, meldingstype, body, words):
    job = handed_over_case(fake)
    assert fiksio.handle(reply(job, meldingstype, body=body)) == "failed"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "failed")
    assert words in job.message


def test_a_reply_for_no_job_of_ours_changes_nothing(ctx, fake, caplog):
    job = handed_over_case(fake)
    before = (job.job_status, job.archive_status, job.message)
    stray = reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.kvittering", svar_til=str(uuid.uuid4()))
    assert fiksio.handle(stray) == "unknown"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status, job.message) == before
    assert stray.melding_id in caplog.text


def test_a_reply_that_overtakes_the_stored_message_id_finds_its_job_by_correlation(ctx, fake):
    """The archive answered before the worker stored Fiks IO's message id (or the worker died in
    between): the klientKorrelasjonsId, our job's own id, finds it; the hand-over written after it
    leaves the job archived."""
    builders.case()
    job = job_of("case_created")
    assert archive.claim(job.id, archive.claim_token("w"))
    early = reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering", svar_til=str(uuid.uuid4()),
                  korrelasjon=job.message_id)
    assert fiksio.handle(early) == "archived"
    db.session.refresh(job)
    assert archive.apply_reply(job, archive.transports.Reply(archive.transports.HANDED_OVER, transport_id="x" * 36)) \
        == "handed over"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status, job.message_code) == ("done", "archived", "archived")
    assert job.fiksio_message_id == "x" * 36


def test_a_receipt_after_the_deadline_is_taken_but_not_after_a_retry_sent_it_again(ctx, fake, app):
    job = handed_over_case(fake)
    first = job.fiksio_message_id
    archive.sweep(now=utcnow() + timedelta(hours=app.config["PPT_ARCHIVE_REPLY_HOURS"] + 1))
    db.session.refresh(job)
    assert (job.archive_status, job.message_code) == ("failed", "no_receipt")
    assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering")) == "archived"
    db.session.refresh(job)
    assert job.archive_status == "archived"

    second = handed_over_case_again(fake, job)
    assert second != first and fake.sent[-1]["klient_melding_id"] == job.message_id  # the same message to the archive
    old = reply(job, "no.ks.fiks.arkiv.v1.feilmelding.ugyldigforespoersel", svar_til=first,
                body=b"")
    assert fiksio.handle(old) == "unknown"  # an error about the earlier send does not fail this one
    db.session.refresh(job)
    assert job.job_status == "in_progress"


@pytest.mark.parametrize("meldingstype", ["no.ks.fiks.arkiv.v1.feilmelding.ugyldigforespoersel",
                                         "no.ks.fiks.kvittering.tidsavbrudd"])
def test_an_error_about_an_earlier_send_does_not_fail_the_send_under_way(ctx, fake, caplog, meldingstype):
    """Sent again: while the new send is on its way (claimed, its Fiks IO id not known yet) the archive's
    error, or Fiks IO's notice, about the first send arrives, found by the job's own correlation id. It
    names the first send, so the job goes on, and the new send's receipt archives it."""
    job = handed_over_case(fake)
    first = job.fiksio_message_id
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job.id).values(
        job_status="new", archive_status="failed", next_attempt_at=None))
    db.session.commit()
    assert archive.claim(job.id, archive.claim_token("w"))
    db.session.refresh(job)
    assert job.fiksio_message_id is None and job.fiksio_earlier_ids == first
    late = reply(job, meldingstype, svar_til=first, korrelasjon=job.message_id, body=b"")
    assert fiksio.handle(late) == "earlier send"
    assert f"earlier send ({first}) of archive job {job.id}" in caplog.text
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("in_progress", "failed")
    assert archive.apply_reply(job, archive.transports.Reply(archive.transports.HANDED_OVER, transport_id="y" * 36),
                               claim=archive.claim_token("w")) == "handed over"
    assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering",
                               svar_til="y" * 36)) == "archived"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "archived")


def test_a_job_sent_three_times_keeps_the_earlier_sends_ids_in_order(ctx, fake):
    job = handed_over_case(fake)
    first = job.fiksio_message_id
    second = handed_over_case_again(fake, job)
    handed_over_case_again(fake, job)
    db.session.refresh(job)
    assert job.fiksio_earlier_ids == f"{first} {second}"
    for earlier in (first, second):  # an error about either, once the third send is known: nothing changes
        assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.feilmelding.serverfeil", svar_til=earlier,
                                   korrelasjon=job.message_id)) == "unknown"
    db.session.refresh(job)
    assert job.job_status == "in_progress"


def test_a_receipt_for_an_earlier_send_completes_the_job_sent_again(ctx, fake):
    """After Prøv på nytt the archive may answer the first send (not the duplicate): what it stored
    stays stored, so that receipt, found by the job's own id, archives the job."""
    job = handed_over_case(fake)
    first = job.fiksio_message_id
    handed_over_case_again(fake, job)
    late = reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering", svar_til=first,
                 korrelasjon=job.message_id)
    assert fiksio.handle(late) == "archived"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "archived")


def test_a_send_that_timed_out_but_arrived_keeps_the_receipt_applied_meanwhile(ctx, fake):
    """The send timed out ("meldinga kan ha kome fram") while the archive's receipt, found by the
    correlation id, already archived the job: the retry the sender would schedule changes nothing."""
    builders.case()
    job = job_of("case_created")
    assert archive.claim(job.id, archive.claim_token("w"))
    db.session.refresh(job)
    fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering",
                        svar_til=str(uuid.uuid4()), korrelasjon=job.message_id))
    outcome = archive.apply_reply(job, archive.transports.Reply(archive.transports.UNREACHABLE, "tidsavbrot"))
    assert outcome == "answered meanwhile"
    db.session.refresh(job)
    assert (job.job_status, job.archive_status) == ("done", "archived")


def test_the_deadline_does_not_undo_a_receipt_applied_after_the_sweep_read_the_job(ctx, fake, app, monkeypatch):
    job = handed_over_case(fake)
    transport = fiksio_transport.transport_for(app)

    receipt = reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering")

    def receipt_meanwhile(message_id):  # the consumer commits, on its own connection, between the
        import threading  # sweep's read of the job and its write

        thread = threading.Thread(target=fiksio.app_handler(app), args=(receipt,))
        thread.start()
        thread.join(30)
        return None
    monkeypatch.setattr(transport, "poll", receipt_meanwhile)
    archive.sweep(now=utcnow() + timedelta(hours=app.config["PPT_ARCHIVE_REPLY_HOURS"] + 1))
    db.session.refresh(job)
    assert (job.job_status, job.archive_status, job.message_code) == ("done", "archived", "archived")


def test_a_passing_fault_is_retried_inside_the_handler_and_a_lost_download_fails_the_job(app, ctx, fake, monkeypatch):
    """Fiks IO dead-letters a reply handed back three times, so the database or Dokumentlager away for a
    moment is waited out in the handler; a download Fiks IO refuses for good fails the job with the reason."""
    from sqlalchemy.exc import OperationalError

    monkeypatch.setattr(fiksio, "RETRY_FIRST", 0.01)
    calls: list[str] = []

    def flaky(received):
        calls.append(received.melding_id)
        if len(calls) == 1:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return "archived"
    monkeypatch.setattr(fiksio, "handle", flaky)
    job = handed_over_case(fake)
    fiksio.app_handler(app)(reply(job, "no.ks.fiks.kvittering.tidsavbrudd"))
    assert len(calls) == 2
    monkeypatch.undo()

    def gone(received):
        raise FiksIoError("Dokumentlager kjenner ikkje fila (HTTP 404)", transient=False)
    monkeypatch.setattr(fiksio, "_files", gone)
    assert fiksio.handle(reply(job, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.kvittering",
                               body=b"x")) == "failed"
    db.session.refresh(job)
    assert job.archive_status == "failed" and "Dokumentlager kjenner ikkje fila" in job.message


def handed_over_case_again(fake, job: ArchiveJob) -> str:
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job.id).values(
        job_status="new", archive_status="failed", next_attempt_at=None))
    db.session.commit()
    assert archive.process(job.id, "test") == "handed over"
    db.session.refresh(job)
    return job.fiksio_message_id


def test_a_send_fiks_io_refuses_is_feil_with_its_text_and_an_outage_is_tried_again(ctx, fake):
    builders.case()
    job = job_of("case_created")
    fake.refuse = FiksIoError("Fiks IO avviste meldinga (400): mottakarkontoen finst ikkje", transient=False)
    assert archive.process(job.id, "test") == "failed"
    db.session.refresh(job)
    assert job.archive_status == "failed" and "mottakarkontoen finst ikkje" in job.message
    db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job.id).values(
        job_status="new", archive_status="new"))
    db.session.commit()
    fake.refuse = FiksIoError("fekk ikkje kontakt med Fiks IO", transient=True)
    assert archive.process(job.id, "test") == "retry later"
    db.session.refresh(job)
    assert job.job_status == "new" and job.next_attempt_at is not None and job.fiksio_message_id is None


def test_the_archives_error_replies_fail_the_job_with_the_archives_text(ctx, fake, monkeypatch):
    case = builders.case()
    first = job_of("case_created")
    archive.process(first.id, "test")
    db.session.refresh(first)
    fiksio.handle(reply(first, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater.kvittering"))
    post = posts.finalize(user("radgjevar1"), builders.post(case, title="Brev").id)
    job = db.session.scalars(select(ArchiveJob).where(ArchiveJob.post_id == post.id)).one()
    assert archive.process(job.id, "test") == "handed over"
    db.session.refresh(job)
    body = replies.feilmelding(replies.IKKEFUNNET, "saksmappa finst ikkje i arkivet")
    monkeypatch.setattr(fiksio, "_files", lambda received: {"feilmelding.xml": body})
    assert fiksio.handle(reply(job, replies.IKKEFUNNET, body=b"x")) == "failed"
    db.session.refresh(job)
    assert job.archive_status == "failed" and "saksmappa finst ikkje i arkivet" in job.message


def test_fiks_io_set_up_wrong_never_fails_a_page_or_the_sweep_and_jobs_wait_saying_why(app, client, login_as):
    """PPT_ARCHIVE_BACKEND=fiksio with no account or keys: the job is tried again later with the
    missing setting named on the log; the sweep, the log pages and the case's archive page still work."""
    app.config["PPT_ARCHIVE_BACKEND"] = "fiksio"
    with app.app_context():
        case = builders.case()
        job = job_of("case_created")
        assert archive.process(job.id, "test") == "retry later"
        db.session.refresh(job)
        assert job.job_status == "new" and "PPT_FIKSIO_ACCOUNT_ID" in job.message
        db.session.execute(ArchiveJob.__table__.update().where(ArchiveJob.id == job.id).values(
            job_status="in_progress", reply_deadline=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        archive.sweep()
        db.session.refresh(job)
        assert (job.job_status, job.message_code) == ("done", "no_receipt")
        case_id, job_id = case.id, job.id
    login_as("konsulent")
    assert client.get("/archive-log/").status_code == 200
    assert client.get(f"/archive-log/case/{case_id}").status_code == 200
    assert client.post(f"/archive-log/{job_id}/retry").status_code in (200, 302, 303)
    with app.app_context():
        assert db.session.get(ArchiveJob, job_id).job_status == "new"


def test_a_question_to_the_archive_gets_the_answer_the_consumer_hands_over_or_says_it_did_not_come(
        app, ctx, fake, monkeypatch):
    """The case's archive page asks over Fiks IO: the answer finds the waiting request by the query's
    correlation id (even when it comes before the send returned), and silence ends after QUERY_SECONDS."""
    import threading

    from ppt_web.archive.transports import query as archive_query
    transport = fiksio_transport.transport_for(app)
    body = replies.feilmelding(replies.IKKEFUNNET, "mappa finst ikkje")
    monkeypatch.setattr(fiksio, "_files", lambda received: {"feilmelding.xml": body})
    answered: list[str] = []

    def archive_answers(recipient, meldingstype, files, **kwargs):
        received = Received(melding_id=str(uuid.uuid4()), meldingstype=replies.IKKEFUNNET, avsender_id=ARCHIVE,
                            svar_til=str(uuid.uuid4()), klient_korrelasjons_id=kwargs["klient_korrelasjons_id"],
                            body=b"x")

        def consume():
            with app.app_context():
                answered.append(fiksio.handle(received))
        thread = threading.Thread(target=consume)
        thread.start()
        thread.join()  # answered before the send returns
        return Sent(str(uuid.uuid4()))

    monkeypatch.setattr(fake, "send", archive_answers)
    payload = archive_query.hent_payload(archive_query.MAPPE_HENT, "ppt", fagsystem="ppt", noekkel="case:1")
    got = transport.query(archive_query.MAPPE_HENT, payload)
    assert answered == ["answer"]
    assert got.kind == "not_found" and "mappa finst ikkje" in got.text

    monkeypatch.setattr(fiksio_transport, "QUERY_SECONDS", 1)
    monkeypatch.setattr(fake, "send", lambda *a, **k: Sent(str(uuid.uuid4())))
    silent = transport.query(archive_query.MAPPE_HENT, payload)
    assert silent.kind == "unreachable" and "1 sekund" in silent.text


def test_one_consumer_per_account_and_a_holder_that_lost_the_lock_stops(app, monkeypatch, tmp_path):
    """Two workers run the consumer thread: one consumes; when the lock is no longer its own (it stalled
    past it and another took it), it stops consuming instead of renewing the other's lock."""
    import threading

    from ppt_web.queue import connection

    running: dict[str, threading.Event] = {}

    class Dummy:  # the AMQP side is tested elsewhere; here only who consumes
        def __init__(self, settings, handle, *, name):
            self.name, self.connected = name, threading.Event()

        def run(self, stop):
            running[self.name] = stop
            self.connected.set()
            stop.wait(30)
            self.connected.clear()

    monkeypatch.setattr(fiksio, "Consumer", Dummy)
    monkeypatch.setattr(fiksio, "LOCK_SECONDS", 3)
    monkeypatch.setattr(fiksio, "from_config", lambda config: SimpleNamespace(
        account_id="acc-test", queue="fiksio.konto.acc-test"))
    stop = threading.Event()
    threads = [threading.Thread(target=fiksio.run_consumer, args=(app, stop, name)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(running) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        assert len(running) == 1  # one of the two consumes
        holder = next(iter(running))
        with app.app_context():
            conn = connection()
            assert conn.get(fiksio.LOCK_KEY + "acc-test").decode().startswith(holder)
            conn.set(fiksio.LOCK_KEY + "acc-test", "another-worker", ex=60)  # taken while it stalled
            deadline = time.monotonic() + 5
            while not running[holder].is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert running[holder].is_set()  # it stopped consuming
            assert conn.get(fiksio.LOCK_KEY + "acc-test") == b"another-worker"  # and left the lock alone
            conn.delete(fiksio.LOCK_KEY + "acc-test")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
