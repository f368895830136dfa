"""The archive's replies over Fiks IO, applied to their jobs: the worker's consumer calls handle() for
each delivery on our account's queue, and acknowledges it only after handle() returned (its effect
committed).

A reply finds its job by svar-til, the Fiks IO message id of the send it answers (kept on the job when
the send was accepted). If that is not stored yet (the reply overtook it, or the worker died in
between), the reply's klientKorrelasjonsId, which the archive copies from our message and which is the
job's own message id, finds it. A reply for no job of ours is logged and acknowledged, as is an error
about an earlier send of a job being sent again (its svar-til is among the job's earlier sends' ids).

  <type>.mottatt                  the job shows "mottatt av arkivet" and keeps waiting
  <type>.kvittering               Utført / Arkivert, with the archive's numbers (archive/sending.py)
  feilmelding.ugyldigforespoersel Utført / Feil with the archive's text (as are ikkefunnet and serverfeil)
  no.ks.fiks.kvittering.*         Fiks IO's own notices (not delivered three times, lifetime over): Feil

A redelivered reply changes nothing twice: a job already done is not touched, except that a receipt
for a job that had given up waiting ("no receipt before the deadline") is still taken: the archive has
the message, and the log should say so.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid

from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..clock import utcnow
from ..extensions import db
from ..fiksio.amqp import Consumer, Received, open_payload
from ..fiksio.asice import AsiceError
from ..fiksio.client import FiksIoError
from ..fiksio.settings import SettingsError, from_config
from ..forking import gate
from ..inbound.cms import CmsError
from ..models import ArchiveJob, ArchiveStatus, JobStatus
from ..queue import connection
from . import codes, replies, transports
from .job_messages import message_values
from .sending import apply_reply, write_retrying
from .transports import fiksio as fiksio_transport

log = logging.getLogger(__name__)

ARKIV_ERRORS = {
    replies.UGYLDIGFORESPOERSEL: (transports.INVALID, "arkivet avviste meldinga: "),
    replies.IKKEFUNNET: (transports.NOT_FOUND, "arkivet fann ikkje det meldinga viser til: "),
    replies.SERVERFEIL: (transports.SERVER_ERROR, "feil hos arkivet: "),
}
# Fiks IO's own notices; the older names of the serverfeil notice too.
FIKSIO_SERVERFEIL = {"no.ks.fiks.kvittering.serverfeil.v1", "no.ks.fiks.io.feilmelding.serverfeil",
                     "no.ks.fiks.io.feilmelding.serverfeil.v1"}
FIKSIO_TIDSAVBRUDD = "no.ks.fiks.kvittering.tidsavbrudd"
FIKSIO_OTHER_ERRORS = {"no.ks.fiks.kvittering.ugyldigforespoersel.v1": transports.INVALID,
                       "no.ks.fiks.kvittering.ikkefunnet.v1": transports.NOT_FOUND}


def handle(received: Received) -> str:
    """Apply one delivery; what happened ("archived", "received", "unknown", ...), for the log and tests."""
    job = _job_for(received)
    if job is not None and _about_an_earlier_send(job, received):
        log.info("Fiks IO: %s %s answers an earlier send (%s) of archive job %s; acknowledged, nothing changed",
                 received.meldingstype[:120], received.melding_id, received.svar_til, job.id)
        db.session.rollback()
        return "earlier send"
    if job is None and fiksio_transport.asked(received.klient_korrelasjons_id):
        return _answer_query(received)
    if job is None:
        log.warning("Fiks IO: %s %s answers %s, no job of ours; acknowledged, nothing changed",
                    received.meldingstype[:120], received.melding_id, received.svar_til)
        return "unknown"
    kind = received.meldingstype
    if kind.endswith(".mottatt"):
        return _received(job)
    reply = _reply(received)
    if reply is None:
        log.warning("Fiks IO: archive job %s got a reply of a type we do not know (%s); acknowledged, "
                    "nothing changed", job.id, kind[:120])
        return "unknown type"
    if not _open(job, reply):
        log.info("Fiks IO: archive job %s is done already; the %s (%s) changes nothing", job.id, kind[:120],
                 received.melding_id)
        db.session.rollback()
        return "already done"
    return apply_reply(job, reply, asynchronous=True)


def _answer_query(received: Received) -> str:
    """An answer to a question a web request waits for (the case's archive page)."""
    try:
        files = _files(received)
    except FiksIoError as exc:
        if exc.transient:
            raise
        log.warning("Fiks IO: the answer %s to a question could not be fetched: %s", received.melding_id, exc)
        return "answer lost"
    name = f"{received.meldingstype}"
    try:
        expected = codes.meldingstype_info(name).get("payloadFilnavn")
    except KeyError:
        expected = None
    body = files.get(expected or "") or next(iter(files.values()), b"")
    fiksio_transport.answer(str(received.klient_korrelasjons_id), received.meldingstype, body)
    return "answer"


def _job_for(received: Received) -> ArchiveJob | None:
    """The job by svar-til, else by the correlation id (the job's own id): while the job has no Fiks IO
    id stored (the reply overtook it), and for mottatt and kvittering always: an archive may answer
    an earlier send of the same message after a resend, and what it stored stays stored. An error or
    a Fiks IO notice about an earlier send changes nothing (_about_an_earlier_send). One statement, so
    one snapshot: with two, the sender's commit of the Fiks IO id could land between them, and the reply
    would match neither."""
    found = []
    if received.svar_til:
        found.append(ArchiveJob.fiksio_message_id == received.svar_til)
    if received.klient_korrelasjons_id:
        same = ArchiveJob.message_id == received.klient_korrelasjons_id[:36]
        found.append(same if _positive(received) else and_(same, ArchiveJob.fiksio_message_id.is_(None)))
    if not found:
        return None
    jobs = list(db.session.scalars(select(ArchiveJob).where(or_(*found)).limit(2)))
    return next((j for j in jobs if j.fiksio_message_id == received.svar_til), jobs[0] if jobs else None)


def _positive(received: Received) -> bool:
    return received.meldingstype.startswith("no.ks.fiks.arkiv.") and \
        received.meldingstype.endswith((".mottatt", ".kvittering"))


def _about_an_earlier_send(job: ArchiveJob, received: Received) -> bool:
    """An error or a Fiks IO notice found by the correlation id while the job is being sent again, which
    names (svar-til) one of the job's earlier sends: it is about that send, not the one under way."""
    return not _positive(received) and bool(received.svar_til) and received.svar_til != job.fiksio_message_id \
        and received.svar_til in (job.fiksio_earlier_ids or "").split()


def _open(job: ArchiveJob, reply: transports.Reply) -> bool:
    """Whether the reply may still change the job: it waits for one, or it gave up waiting and this is
    the receipt after all."""
    if job.deleted_at is not None:
        return False
    if job.job_status == JobStatus.IN_PROGRESS:
        return True
    late_receipt = job.message_code == "no_receipt" and reply.kind == transports.OK
    return job.job_status == JobStatus.DONE and job.archive_status == ArchiveStatus.FAILED and late_receipt


def _received(job: ArchiveJob) -> str:
    def mark() -> int:
        result = db.session.execute(update(ArchiveJob).where(
            ArchiveJob.id == job.id, ArchiveJob.job_status == JobStatus.IN_PROGRESS,
            ArchiveJob.received_at.is_(None)).values(received_at=utcnow(), **message_values("received"))
            .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)
    return "received" if write_retrying(mark) else "received before"


def _reply(received: Received) -> transports.Reply | None:
    kind = received.meldingstype
    try:
        if kind.endswith(".kvittering") and kind.startswith("no.ks.fiks.arkiv."):
            files = _files(received)
            body = files.get("arkivmelding-kvittering.xml") or next(iter(files.values()), b"")
            return transports.Reply(transports.OK, ids=replies.parse_kvittering(body) if body.strip() else {})
        if kind in ARKIV_ERRORS:
            reply_kind, prefix = ARKIV_ERRORS[kind]
            files = _files(received)
            body = files.get("feilmelding.xml") or next(iter(files.values()), b"")
            return transports.Reply(reply_kind, prefix + replies.parse_feilmelding(body))
    except (replies.ReplyInvalid, AsiceError, CmsError) as exc:
        return transports.Reply(transports.INVALID, f"uforståeleg svar frå arkivet ({kind[:120]}): {exc}")
    except FiksIoError as exc:
        if exc.transient:
            raise  # Dokumentlager away for a moment: app_handler tries again
        return transports.Reply(transports.INVALID, f"svaret frå arkivet kunne ikkje hentast: {exc.text}")
    if kind in FIKSIO_SERVERFEIL:
        return transports.Reply(transports.SERVER_ERROR, "Fiks IO fekk ikkje levert meldinga til arkivet "
                                f"(arkivet tok henne ikkje imot tre gonger){_notice_text(received)}")
    if kind == FIKSIO_TIDSAVBRUDD:
        return transports.Reply(transports.SERVER_ERROR, "arkivet henta ikkje meldinga frå Fiks IO før ho gjekk ut "
                                "(tidsavbrot)")
    if kind in FIKSIO_OTHER_ERRORS:
        return transports.Reply(FIKSIO_OTHER_ERRORS[kind], f"Fiks IO avviste meldinga{_notice_text(received)}")
    return None


def _files(received: Received) -> dict[str, bytes]:
    """The reply's payload files; FiksIoError (Dokumentlager away) goes up: the delivery is tried again."""
    if not received.has_payload:
        return {}
    transport = transports.get_transport()
    client = getattr(transport, "client", None)
    if client is None:
        raise FiksIoError("PPT_ARCHIVE_BACKEND er ikkje fiksio", transient=True)
    return open_payload(received, client, client.settings.private_key_pem)


def _notice_text(received: Received) -> str:
    """Fiks IO's notice body, if it is the JSON its schema describes (feilmelding), else nothing."""
    if not received.body:
        return ""
    try:
        text = json.loads(received.body.decode("utf-8")).get("feilmelding")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {str(text)[:500]}" if text else ""


RETRY_FIRST, RETRY_LONGEST = 1.0, 30.0


def app_handler(app, stop: threading.Event | None = None):
    """handle() in an app context, for the consumer thread. A passing fault of ours (the database,
    Redis, Dokumentlager away) is retried here, with back-off, until it succeeds or the worker stops:
    handing the delivery back instead would count against it at Fiks IO, which dead-letters a message
    after three unacknowledged deliveries and tells the archive its reply failed."""
    stop = stop or threading.Event()

    def run(received: Received) -> None:
        pause = RETRY_FIRST
        while True:
            try:
                with gate.busy(), app.app_context():  # a work horse is not forked in the middle of it
                    try:
                        handle(received)
                        return
                    finally:
                        db.session.remove()
            except (SQLAlchemyError, RedisError, FiksIoError) as exc:
                if stop.is_set():
                    raise  # not acknowledged: it comes again to the next consumer
                log.warning("Fiks IO: %s %s could not be applied yet (%s); trying again in %.0f s",
                            received.meldingstype[:120], received.melding_id, exc, pause)
                stop.wait(pause)
                pause = min(pause * 2, RETRY_LONGEST)
    return run


CONSUMER_KEY = "ppt:fiksio:consumer:"  # + our account id: who consumes, while connected (/readyz reads it)
LOCK_KEY = "ppt:fiksio:consumer-lock:"  # + our account id: the one process that may consume
LOCK_SECONDS = 30
STATUS_SECONDS = 30
# Renew the lock only while it is still ours (a token compare), so a holder that stalled past it and
# lost it to another worker learns so, and stops.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def run_consumer(app, stop: threading.Event, name: str) -> None:
    """The worker's consumer thread: one per account per deployment. Every worker runs this; a Redis
    lock lets one of them consume, renewed every LOCK_SECONDS / 3 while it is still the holder's; when
    that worker dies another takes over within LOCK_SECONDS and a poll. A holder that finds the lock
    no longer its own stops consuming. Replies are applied idempotently, so even two consumers for a
    moment change nothing twice."""
    try:
        settings = from_config(app.config)
    except SettingsError as exc:
        log.error("Fiks IO: no consumer of our queue: %s", exc)
        return
    with app.app_context():
        conn = connection()
    lock, status = LOCK_KEY + settings.account_id, CONSUMER_KEY + settings.account_id
    token = f"{name}#{uuid.uuid4().hex[:8]}"
    warned = False
    while not stop.is_set():
        try:
            held = bool(conn.set(lock, token, nx=True, ex=LOCK_SECONDS))
            warned = False
        except RedisError as exc:
            held = False
            if not warned:
                log.warning("Fiks IO consumer: Redis unavailable (%s); trying again", exc)
                warned = True
        if held:
            log.info("Fiks IO: %s consumes %s", name, settings.queue)
            try:
                _consume(settings, app, conn, lock, status, token, name, stop)
            finally:
                with contextlib.suppress(RedisError):
                    conn.eval(_RELEASE, 1, lock, token)
                    conn.delete(status)
        stop.wait(LOCK_SECONDS / 3)


def _consume(settings, app, conn, lock: str, status: str, token: str, name: str, stop: threading.Event) -> None:
    """Run the consumer until the worker stops or the lock is lost; renew the lock and, while
    connected, the status key. Redis away for a while: go on consuming (the lock cannot be taken by
    another meanwhile either), saying so once."""
    mine = threading.Event()
    consumer = Consumer(settings, app_handler(app, mine), name=name)
    thread = threading.Thread(target=consumer.run, args=(mine,), daemon=True, name="fiksio-amqp")
    thread.start()
    renewed, shown, warned = time.monotonic(), None, False
    try:
        while thread.is_alive() and not stop.wait(1):
            connected = consumer.connected.is_set()
            if time.monotonic() - renewed < LOCK_SECONDS / 3 and connected == shown:
                continue
            try:
                if not conn.eval(_RENEW, 1, lock, token, LOCK_SECONDS):
                    log.warning("Fiks IO: %s no longer holds the consumer lock of %s; it stops consuming",
                                name, settings.queue)
                    return
                if connected:
                    conn.set(status, name, ex=STATUS_SECONDS)
                else:
                    conn.delete(status)
                renewed, shown, warned = time.monotonic(), connected, False
            except RedisError as exc:
                renewed = time.monotonic()  # the next try in LOCK_SECONDS / 3, not every second
                if not warned:
                    log.warning("Fiks IO consumer lock not renewed (%s); consuming on", exc)
                    warned = True
    finally:
        mine.set()
        thread.join(10)
