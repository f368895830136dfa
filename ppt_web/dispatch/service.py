"""Electronic dispatch of finalized outgoing posts through SvarUt (or its folder stand-in).

Each recipient is a Dispatch row with our UUID as eksternReferanse. Sending is at most once per
recipient whatever crashes or retries happen: an attempt is marked "outcome unknown" in its own
commit before the request goes out, and an attempt after an unknown outcome first asks SvarUt
for that eksternReferanse and adopts what it finds. The post becomes `dispatched` only when every
recipient is confirmed (LEST, LEVERT_*, PRINTET); the first confirmation is the letter's expedition
(expedition.py). MANUELT_HANDTERT is an end state: the letter may have been delivered by hand, so it
is never retried or sent again.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, and_, func, or_, select, update

from .. import claims
from ..activity import service as activity
from ..addresses import of_correspondent
from ..auth import access, scope
from ..cases.posts import event, needs_approval
from ..clock import today, utcnow
from ..errors import Conflict, DomainError, Invalid, NotFound, raise_if
from ..extensions import db, on_postgresql
from ..files.storage import StoredFileFault, checked_path, read_checked
from ..models import Case, Dispatch, DispatchStatus, JournalPost, PostStatus, PostType, User
from ..notify import link, notify
from ..outbound.folder import FolderAdapter
from ..outbound.svarut import SvarUtAdapter, resolve_token_provider
from ..outbound.types import OutboundDocument, OutboundUnavailable, Recipient, Shipment, map_status, problems
from ..queue import Job, enqueue_after_commit
from . import expedition

log = logging.getLogger(__name__)
# RQ's time limit for one attempt (the UI's immediate send): SvarUt's look-up and upload limits
# (outbound/svarut.py: 16 minutes for an upload) and some; RQ's default of 180 s cut a large letter short.
SEND_TIMEOUT = 20 * 60


def outbound_adapter():
    """The configured adapter: the folder stand-in (default) or SvarUt REST v3."""
    cfg = current_app.config
    if cfg["PPT_OUTBOUND_BACKEND"] == "svarut":
        return SvarUtAdapter(cfg["PPT_SVARUT_URL"], cfg["PPT_SVARUT_KONTO"], cfg["PPT_SVARUT_INTEGRATION_ID"],
                             cfg["PPT_SVARUT_INTEGRATION_PASSWORD"], _token_provider(cfg["PPT_SVARUT_TOKEN_PROVIDER"]))

    return FolderAdapter(Path(cfg["PPT_SVARUT_DIR"]))


def _token_provider(spec):
    """PPT_SVARUT_TOKEN_PROVIDER: "module:attribute", a provider or a factory of one (Maskinporten)."""
    return resolve_token_provider(spec, "PPT_SVARUT_TOKEN_PROVIDER")


def _recipients(post: JournalPost) -> tuple[list[tuple], list[str]]:
    found, refused = [], []
    for c in post.correspondents:
        if c.role != "recipient":
            continue
        where = of_correspondent(c)
        # SvarUt takes two street lines; a Norwegian address needs its postal code, one abroad may lack it.
        address = where if where is not None and where.lines and where.city and (
            where.postal_code or where.country != "NO") else None
        if c.national_id:
            kind, digital_id = "person", c.national_id
        elif c.org_number:
            kind, digital_id = "organisation", c.org_number
        else:
            refused.append(str(_l("%(name)s has neither a national id nor an organisation number", name=c.name)))
            continue
        if address is None:
            refused.append(str(_l("%(name)s has no address with postal code and place", name=c.name)))
            continue
        recipient = Recipient(kind=kind, name=c.name[:100], digital_id=digital_id, address_line1=address.lines[0],
                              address_line2=", ".join(address.lines[1:]), postal_code=address.postal_code,
                              city=address.city, country=address.country)
        found.append((c, recipient))
    return found, refused


def dispatch_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not dispatch the post (None: they may, if its recipients can be reached)."""
    refusal = access.refused(actor, "send", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.status == PostStatus.DISPATCHED:
        return Conflict(_l("The post has been dispatched already."))
    if post.status != PostStatus.FINALIZED:
        return Conflict(_l("Only a finalized post can be dispatched."))
    if post.post_type != PostType.U:
        return Conflict(_l("Only an outgoing (U) post is dispatched."))
    if needs_approval(post) and post.approved_by_id is None:
        return Conflict(_l("An expert assessment goes out only after a leader has approved it."))
    if post.expedition == expedition.PAPER:
        return _sent_on_paper()
    if expedition.downtime_paper_letter(post):
        return Conflict(_l("The letter was registered after downtime as sent on %(date)s: it went on paper and "
                           "is not also sent electronically.", date=post.sent_on.strftime("%d.%m.%Y")
                           if post.sent_on else ""))
    if _dispatched(post):
        return _already_dispatched()
    return None


def _sent_on_paper() -> Conflict:
    return Conflict(_l("The letter is recorded as sent on paper; it is not also sent electronically."))


def _already_dispatched() -> Conflict:
    return Conflict(_l("The post has been dispatched already: a failed recipient is retried from the post or "
                       "the dispatch failures list."))


def _dispatched(post: JournalPost) -> bool:
    return db.session.scalar(select(Dispatch.id).where(Dispatch.post_id == post.id,
                                                       Dispatch.status != DispatchStatus.REPLACED).limit(1)) is not None


def retry_refusal(actor: User, row: Dispatch) -> DomainError | None:
    """Why the actor may not retry this recipient's dispatch (None: they may)."""
    refusal = access.refused(actor, "send", object_type="journal_post", object_id=row.post_id)
    if refusal is not None:
        return refusal
    if row.status == DispatchStatus.MANUAL:
        return _handled_manually()
    if row.status != DispatchStatus.FAILED:
        return Conflict(_l("Only a failed dispatch can be retried."))
    if row.post.expedition == expedition.PAPER:
        return _sent_on_paper()
    return None


def _handled_manually() -> Conflict:
    return Conflict(_l("SvarUt handled this letter manually, so it may have reached the recipient: it is not "
                       "sent again. If it went on paper, record that on the post."))


def request_dispatch(actor: User, post_id: int) -> list[Dispatch]:
    """Send a finalized outgoing post to each of its recipients, in the background."""
    post = scope.post(actor, post_id)
    raise_if(dispatch_refusal(actor, post))
    # Lock the post's row first (PostgreSQL waits here; SQLite takes its write lock), then look: two
    # clicks at once make one dispatch, not two.
    db.session.execute(update(JournalPost).where(JournalPost.id == post.id).values(status=JournalPost.status))
    if _dispatched(post):
        db.session.rollback()
        raise _already_dispatched()
    if expedition.expedited_on_paper(post.id):  # recorded while we waited for the lock
        db.session.rollback()
        raise _sent_on_paper()
    found, refused = _recipients(post)
    if not found and not refused:
        refused.append(str(_l("the post has no recipient")))
    for correspondent, recipient in found:
        for problem in problems(_shipment_for(post, recipient, "check", with_files=False)):
            refused.append(f"{correspondent.name}: {problem}")
    if refused:
        raise Invalid(_l("The post cannot be dispatched: %(problems)s.", problems="; ".join(refused)))
    for document in post.documents:  # StoredFileFault (409): one is missing or has changed on disk
        checked_path(document.sha256, document.filename)
    rows = [Dispatch(post_id=post.id, correspondent_id=c.id, external_ref=str(uuid.uuid4()),
                     recipient_kind=r.kind, recipient_name=r.name, recipient_id=r.digital_id,
                     address_line1=r.address_line1, address_line2=r.address_line2, postal_code=r.postal_code,
                     city=r.city, country=r.country, created_by_id=actor.id) for c, r in found]
    db.session.add_all(rows)
    db.session.flush()
    event(post, actor, "dispatch_requested", recipients=[r.recipient_name for r in rows])
    activity.record("post_dispatch_requested", actor=actor, object_type="journal_post", object_id=post.id,
                    after={"recipients": [r.recipient_name for r in rows], "dispatches": [r.id for r in rows]})
    for row in rows:
        enqueue_after_commit(Job.SEND_DISPATCH, row.id, job_timeout=SEND_TIMEOUT)
    db.session.commit()
    return rows


def _shipment_for(post: JournalPost, recipient: Recipient, external_ref: str, with_files: bool = True) -> Shipment:
    documents = tuple(
        OutboundDocument(filename=d.filename, mime_type="application/pdf",
                         data=read_checked(d.sha256, d.filename) if with_files else b"%PDF")
        for d in sorted(post.documents, key=lambda d: (d.role != "main", d.position)))
    year, _, sequence = post.case.number.partition("/")
    return Shipment(external_ref=external_ref, correlation_id=post.case.number, title=post.title,
                    recipient=recipient, documents=documents,
                    case_year=int(year) if year.isdigit() else None,
                    case_sequence=int(sequence) if sequence.isdigit() else None)


def _recipient(row: Dispatch) -> Recipient:
    return Recipient(kind=row.recipient_kind, name=row.recipient_name, digital_id=row.recipient_id,
                     address_line1=row.address_line1, address_line2=row.address_line2, postal_code=row.postal_code,
                     city=row.city, country=row.country)


def process(dispatch_id: int, adapter=None) -> str:
    """One attempt for one recipient: claim, look up, send, record. Safe to call twice.

    SvarUt is asked for our eksternReferanse before every send (one GET): after a crash, a timeout,
    a retry or a claim that raced another process, a letter it has already is adopted, not resent.
    """
    adapter = adapter or outbound_adapter()  # a configuration fault shows before anything is claimed
    now = utcnow()
    lease = now + timedelta(seconds=int(current_app.config["PPT_DISPATCH_LEASE_SECONDS"]))
    # The claim also records "outcome unknown": if this process dies after the request went out,
    # the next attempt asks SvarUt before sending again.
    if not claims.claim(Dispatch, dispatch_id, [
        Dispatch.status == DispatchStatus.PENDING,
        or_(Dispatch.lease_until.is_(None), Dispatch.lease_until < now),
        or_(Dispatch.next_attempt_at.is_(None), Dispatch.next_attempt_at <= now),
    ], dict(lease_until=lease, attempts=Dispatch.attempts + 1, outcome_unknown=True, updated_at=now)):
        return "skipped"
    row = db.session.get(Dispatch, dispatch_id)
    assert row is not None  # the claim just updated it
    db.session.refresh(row)
    external_ref = row.external_ref
    # No transaction (nor a database connection) is held while SvarUt answers, which may take minutes: the
    # claim is committed, and what the send needs is read in a transaction of its own, ended before it.
    db.session.rollback()
    try:
        found = adapter.lookup(external_ref)
        if found:
            if not _holds(dispatch_id, lease):
                return _claim_lost(dispatch_id)
            _sent(row, found, "found by eksternReferanse after an unknown outcome")
            db.session.commit()
            return "adopted"
        shipment = _shipment_for(row.post, _recipient(row), external_ref)
        db.session.rollback()
        if not _holds(dispatch_id, lease):  # the look-up outlasted the lease: another attempt may be sending
            return _claim_lost(dispatch_id)
        db.session.commit()
        result = adapter.send(shipment)
    except OutboundUnavailable as exc:
        return _later(row, str(exc)) if _holds(dispatch_id, lease) else _claim_lost(dispatch_id)
    except StoredFileFault as fault:  # nothing was sent; trying again will not help until someone acts
        db.session.rollback()
        if not _holds(dispatch_id, lease):
            return _claim_lost(dispatch_id)
        row = db.session.get(Dispatch, dispatch_id)
        assert row is not None  # the claim committed it
        _failed(row, str(fault.message), unknown=False)
        db.session.commit()
        return "failed"
    except Exception as exc:  # noqa: BLE001 - a fault of ours (a file, a setting): back off and show it
        db.session.rollback()
        log.exception("dispatch %s: attempt failed", dispatch_id)
        if not _holds(dispatch_id, lease):
            return _claim_lost(dispatch_id)
        row = db.session.get(Dispatch, dispatch_id)
        assert row is not None  # the claim committed it
        return _later(row, type(exc).__name__)
    if not _holds(dispatch_id, lease):
        return _claim_lost(dispatch_id)
    if result.outcome == "sent":
        _sent(row, result.forsendelse_id, "")
        db.session.commit()
        return "sent"
    if result.outcome == "failed":
        _failed(row, result.detail, unknown=False)
        db.session.commit()
        return "failed"
    return _later(row, result.detail)


def _holds(dispatch_id: int, lease) -> bool:
    """Whether this attempt's claim still holds the dispatch: still pending, with the lease its claim set (a
    worker paused past its lease may find that another attempt has claimed it since, sent it and recorded
    the outcome). When it does, this no-op UPDATE has taken the row's write lock for the transaction, so
    the outcome that follows in it is written under the same claim; when not, the transaction is ended."""
    held = cast(CursorResult[Any], db.session.execute(
        update(Dispatch).where(Dispatch.id == dispatch_id, Dispatch.status == DispatchStatus.PENDING,
                               Dispatch.lease_until == lease)
        .values(lease_until=lease).execution_options(synchronize_session=False))).rowcount == 1
    if not held:
        db.session.rollback()
    return held


def _claim_lost(dispatch_id: int) -> str:
    log.warning("dispatch %s: another attempt holds it now (this one's lease ran out while it worked); "
                "its outcome is not written", dispatch_id)
    return claims.LOST


def _sent(row: Dispatch, forsendelse_id: str | None, note: str) -> None:
    row.status, row.forsendelse_id, row.outcome_unknown = DispatchStatus.SENT, forsendelse_id, False
    row.lease_until, row.message, row.updated_at = None, note, utcnow()
    event(row.post, None, "dispatch_sent", recipient=row.recipient_name, dispatch=row.id)


def _later(row: Dispatch, detail: str) -> str:
    """No answer (timeout, 5xx, connection): try again with back-off, looking it up first."""
    cfg = current_app.config
    row.lease_until, row.updated_at = None, utcnow()
    row.message = str(_l("No answer from SvarUt (%(detail)s); tried again automatically.", detail=detail[:300]))
    if row.attempts >= int(cfg["PPT_DISPATCH_MAX_ATTEMPTS"]):
        _failed(row, str(_l("No answer from SvarUt after %(n)s attempts. A retry first asks SvarUt whether it has "
                             "the letter.", n=row.attempts)), unknown=True)
        db.session.commit()
        return "failed"
    row.next_attempt_at = utcnow() + timedelta(seconds=int(cfg["PPT_DISPATCH_BACKOFF_SECONDS"]) *
                                               2 ** max(0, row.attempts - 1))
    db.session.commit()
    return "later"


def _failed(row: Dispatch, detail: str, unknown: bool) -> None:
    row.status, row.message, row.outcome_unknown = DispatchStatus.FAILED, detail[:2000], unknown
    row.lease_until, row.updated_at = None, utcnow()
    post = row.post
    event(post, None, "dispatch_failed", comment=detail[:500], recipient=row.recipient_name, dispatch=row.id)
    activity.record("dispatch_failed", actor_name="dispatch", object_type="journal_post", object_id=post.id,
                    outcome="failed", detail=f"{row.recipient_name}: {detail[:300]}")
    _tell(row, _l("Dispatch of %(number)s to %(name)s failed: %(detail)s", number=post.number,
                  name=row.recipient_name, detail=detail[:150]))


def _tell(row: Dispatch, message) -> None:
    """Notify the case's handler and whoever asked for the dispatch (once each, if active and they may still
    see the case: the notice names the post and the recipient)."""
    case = row.post.case
    told = {case.handler}
    if row.created_by is not None:
        told.add(row.created_by)
    for user in told:
        if user.active and scope.may_see(user, case):
            notify(user, message, link("cases.post", post_id=row.post_id))


def sweep(adapter=None, renew=lambda: None) -> dict:
    """Every PPT_DISPATCH_SECONDS: send what is due (pending, lease free), then follow statuses.

    renew() is called after each send, so the caller's lock lasts as long as the sweep does."""
    now = utcnow()
    due = list(db.session.scalars(select(Dispatch.id).where(
        Dispatch.status == DispatchStatus.PENDING,
        or_(Dispatch.lease_until.is_(None), Dispatch.lease_until < now),
        or_(Dispatch.next_attempt_at.is_(None), Dispatch.next_attempt_at <= now)).order_by(Dispatch.id).limit(200)))
    adapter = adapter or outbound_adapter()
    outcomes: dict[str, int] = {}
    for dispatch_id in due:
        outcome = process(dispatch_id, adapter)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        renew()
    outcomes["status"] = follow_statuses(adapter)
    return outcomes


def follow_statuses(adapter=None) -> int:
    """Ask for the status of what was sent (status/sok), and mark posts dispatched when all arrived.

    SvarUt is asked with no transaction open (its answer may take minutes); the rows are read again after
    it, and only those still sent are changed, from the status they have then: a row retried or changed
    meanwhile (by a user, or by another sweep that overlapped this one) is left as it is now."""
    # Oldest check first, and each checked row goes to the back (next_attempt_at is "next status
    # check" for a sent row): letters never collected cannot crowd out new ones.
    sent = (Dispatch.status == DispatchStatus.SENT, Dispatch.forsendelse_id.is_not(None))
    asked = list(db.session.execute(select(Dispatch.id, Dispatch.forsendelse_id).where(*sent)
                                    .order_by(Dispatch.next_attempt_at.is_not(None), Dispatch.next_attempt_at,
                                              Dispatch.id).limit(1000)))
    db.session.rollback()
    if not asked:
        return 0
    adapter = adapter or outbound_adapter()
    try:
        raw = adapter.statuses([forsendelse_id for _, forsendelse_id in asked])
    except OutboundUnavailable as exc:
        log.warning("dispatch statuses not fetched: %s", exc)
        return 0
    again = select(Dispatch).where(Dispatch.id.in_([dispatch_id for dispatch_id, _ in asked]), *sent) \
        .order_by(Dispatch.id)
    if on_postgresql():  # rows another sweep is writing are its to write
        again = again.with_for_update(skip_locked=True)
    rows = list(db.session.scalars(again))
    changed = 0
    checked = utcnow()
    for row in rows:
        row.next_attempt_at = checked
        status = raw.get(row.forsendelse_id)
        if not status or status == row.raw_status:
            continue
        row.raw_status, row.updated_at = status, utcnow()
        mapped = map_status(status)
        if mapped == "confirmed":
            row.status = DispatchStatus.CONFIRMED
            event(row.post, None, "dispatch_confirmed", recipient=row.recipient_name, status=status)
            # The first delivery is the letter's expedition; later ones (or this one polled again) are not.
            expedition.expedite(row.post, today(), expedition.SVARUT)
        elif mapped == "manual":
            _manual(row, status)
        elif mapped == "failed":
            _failed(row, str(_l("SvarUt reports %(status)s.", status=status)), unknown=False)
        changed += 1
    db.session.flush()
    for post in {r.post for r in rows}:
        _dispatched_when_all_confirmed(post)
    db.session.commit()
    return changed


def _manual(row: Dispatch, status: str) -> None:
    """MANUELT_HANDTERT: someone at SvarUt took the letter over. Not failed (a retry could deliver it
    twice) and not delivered as far as we know: the handler is told to find out."""
    row.status, row.outcome_unknown, row.lease_until, row.updated_at = DispatchStatus.MANUAL, False, None, utcnow()
    row.message = str(_l("Handled manually at SvarUt (%(status)s). It is not sent again: check whether it reached "
                         "the recipient, and record it as sent on paper if it did.", status=status))
    post = row.post
    event(post, None, "dispatch_manual", recipient=row.recipient_name, dispatch=row.id, status=status)
    activity.record("dispatch_manual", actor_name="dispatch", object_type="journal_post", object_id=post.id,
                    detail=row.recipient_name)
    _tell(row, _l("SvarUt handled the dispatch of %(number)s to %(name)s manually: check whether it arrived.",
                  number=post.number, name=row.recipient_name))


def _dispatched_when_all_confirmed(post: JournalPost) -> None:
    states = set(db.session.scalars(select(Dispatch.status).where(Dispatch.post_id == post.id,
                                                                   Dispatch.status != DispatchStatus.REPLACED)))
    if states == {DispatchStatus.CONFIRMED} and post.status == PostStatus.FINALIZED:
        post.status = PostStatus.DISPATCHED
        event(post, None, "dispatched")
        activity.record("post_dispatched", actor_name="dispatch", object_type="journal_post", object_id=post.id)


def retry(actor: User, dispatch_id: int) -> Dispatch:
    """A failed dispatch again. After an unknown outcome the same shipment (looked up first);
    after a refusal a new shipment with a new eksternReferanse, since the old one was not delivered."""
    row = db.session.get(Dispatch, dispatch_id)
    if row is None:
        raise NotFound(object_type="dispatch", object_id=dispatch_id)
    post = scope.post(actor, row.post_id)
    raise_if(retry_refusal(actor, row))
    recipient = _current_recipient(post, row) if not row.outcome_unknown else None
    # Lock the post's row (as a request for dispatch and a paper record do), then look again.
    db.session.execute(update(JournalPost).where(JournalPost.id == post.id).values(status=JournalPost.status))
    if expedition.expedited_on_paper(post.id):
        db.session.rollback()
        raise _sent_on_paper()
    # One conditional UPDATE: two people retrying the same failure at once make one new attempt.
    to = DispatchStatus.PENDING if row.outcome_unknown else DispatchStatus.REPLACED
    changed = cast(CursorResult[Any], db.session.execute(
        update(Dispatch).where(Dispatch.id == row.id, Dispatch.status == DispatchStatus.FAILED)
        .values(status=to, updated_at=utcnow())))
    if changed.rowcount != 1:
        db.session.rollback()
        raise Conflict(_l("Only a failed dispatch can be retried."))
    db.session.refresh(row)
    if row.outcome_unknown:
        # SvarUt may have it: the same shipment again, looked up before it is sent.
        row.attempts, row.next_attempt_at, row.message = 0, None, ""
        again = row
    else:
        # Refused, so not delivered: a new shipment (new eksternReferanse) to the recipient as the
        # post has it now, so a corrected address is used.
        assert recipient is not None  # looked up above for a known outcome
        correspondent, fresh = recipient
        again = Dispatch(post_id=row.post_id, correspondent_id=correspondent.id, external_ref=str(uuid.uuid4()),
                         recipient_kind=fresh.kind, recipient_name=fresh.name, recipient_id=fresh.digital_id,
                         address_line1=fresh.address_line1, address_line2=fresh.address_line2,
                         postal_code=fresh.postal_code, city=fresh.city, country=fresh.country,
                         created_by_id=actor.id, replaces_id=row.id)
        db.session.add(again)
    db.session.flush()
    event(post, actor, "dispatch_retried", recipient=row.recipient_name, dispatch=again.id)
    activity.record("dispatch_retried", actor=actor, object_type="journal_post", object_id=post.id,
                    after={"dispatch": again.id, "recipient": row.recipient_name})
    enqueue_after_commit(Job.SEND_DISPATCH, again.id, job_timeout=SEND_TIMEOUT)
    db.session.commit()
    return again


def _current_recipient(post: JournalPost, row: Dispatch):
    """The failed row's recipient as the post has it now (after any metadata correction)."""
    found, refused = _recipients(post)
    for correspondent, recipient in found:
        if correspondent.id == row.correspondent_id:
            return correspondent, recipient
    for correspondent, recipient in found:
        if correspondent.name == row.recipient_name:
            return correspondent, recipient
    raise Invalid(_l("%(name)s is no longer a valid recipient on the post: %(problems)s", name=row.recipient_name,
                     problems="; ".join(refused) or "-"))


def for_post(post: JournalPost) -> list[Dispatch]:
    return list(db.session.scalars(select(Dispatch).where(Dispatch.post_id == post.id).order_by(Dispatch.id)))


def needs_a_person():
    """Failed dispatches until the letter is recorded as sent on paper; those handled manually at SvarUt
    until the letter is expedited at all (on paper, or confirmed to another recipient)."""
    return or_(and_(Dispatch.status == DispatchStatus.FAILED,
                    or_(JournalPost.expedition.is_(None), JournalPost.expedition != expedition.PAPER)),
               and_(Dispatch.status == DispatchStatus.MANUAL, JournalPost.expedited_on.is_(None)))


def failures(actor: User, limit: int = 300) -> list[Dispatch]:
    """The "SvarUt failed" basket: failed (and manually handled) dispatches of posts the actor may see,
    newest first."""
    access.require(actor, "send")
    return list(db.session.scalars(
        select(Dispatch).join(JournalPost, Dispatch.post_id == JournalPost.id)
        .join(Case, JournalPost.case_id == Case.id)
        .where(and_(needs_a_person(), scope.case_clause(actor)))
        .order_by(Dispatch.updated_at.desc(), Dispatch.id.desc()).limit(limit)))


def failed_count(actor: User) -> int:
    return db.session.scalar(
        select(func.count(Dispatch.id)).join(JournalPost, Dispatch.post_id == JournalPost.id)
        .join(Case, JournalPost.case_id == Case.id)
        .where(needs_a_person(), scope.case_clause(actor))) or 0
