"""Expedition: the day an outgoing letter left us, and how.

A letter is expedited once: when SvarUt confirms the first delivery of it (LEST, LEVERT_*, PRINTET),
or when a person records that it went on paper. Either sets the post's expedited_on and expedition
and queues the archive update that gives the post journalstatus E (ekspedert) with sendtDato, in the
same transaction as the change.

SvarUt's "sent" statuses (MOTTATT, SENDT_PRINT, ...) are not an expedition yet: SvarUt may still
answer IKKE_LEVERT, AVVIST or MANUELT_HANDTERT, and an archive's E is not taken back. A dispatch
handled by hand at SvarUt is not one either: nobody has told us the letter went out.

The post's own sent_on is metadata, changed only by a metadata correction; it is never written here.
"""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from ..auth import access, scope
from ..cases.expedite import PAPER as PAPER
from ..cases.expedite import SVARUT as SVARUT
from ..cases.expedite import downtime_paper_letter as downtime_paper_letter
from ..cases.expedite import expedite as expedite
from ..cases.expedite import on_finalized as on_finalized
from ..clock import today
from ..errors import Conflict, DomainError, Invalid, raise_if
from ..extensions import db
from ..models import Dispatch, DispatchStatus, JournalPost, PostStatus, PostType, User

# A dispatch in these states is on its way or arrived: the letter is not also recorded as sent on paper.
IN_FLIGHT = (DispatchStatus.PENDING, DispatchStatus.SENT, DispatchStatus.CONFIRMED)


def in_flight(post: JournalPost) -> bool:
    """Whether an electronic dispatch of the post is on its way or delivered (read fresh, not cached)."""
    return db.session.scalar(select(Dispatch.id).where(Dispatch.post_id == post.id,
                                                       Dispatch.status.in_(IN_FLIGHT)).limit(1)) is not None


def paper_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not record that this letter went on paper (None: they may)."""
    refusal = access.refused(actor, "send", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.post_type != PostType.U:
        return Conflict(_l("Only an outgoing (U) letter is recorded as sent."))
    if post.expedited_on is not None:
        return Conflict(_l("The letter is recorded as sent already (%(date)s).",
                           date=post.expedited_on.strftime("%d.%m.%Y")))
    if post.status == PostStatus.DISPATCHED:
        return Conflict(_l("The post has been dispatched already."))
    if post.status != PostStatus.FINALIZED:
        return Conflict(_l("Only a finalized letter can be recorded as sent."))
    if in_flight(post):
        return Conflict(_l("The letter is being sent electronically. Record it as sent on paper only if that "
                           "dispatch fails or is handled manually at SvarUt."))
    return None


def paper_default(post: JournalPost) -> date:
    """The date the form offers: the downtime letter's own sent date, else today."""
    return post.sent_on if downtime_paper_letter(post) and post.sent_on else today()


def record_paper(actor: User, post_id: int, on: date | None) -> JournalPost:
    """Registrer sendt på papir: the finalized letter went out on paper on that day."""
    post = scope.post(actor, post_id)
    raise_if(paper_refusal(actor, post))
    if on is None:
        raise Invalid(_l("Give the date the letter went out."), field="sent_on")
    if on > today():
        raise Invalid(_l("The date cannot be in the future."), field="sent_on")
    if post.document_date is not None and on < post.document_date:
        raise Invalid(_l("A letter cannot go out before its document date (%(date)s).",
                         date=post.document_date.strftime("%d.%m.%Y")), field="sent_on")
    # Lock the post's row, as a request for electronic dispatch does, then look again: a dispatch
    # requested meanwhile wins, and the letter is not recorded as sent on paper as well.
    db.session.execute(update(JournalPost).where(JournalPost.id == post.id).values(status=JournalPost.status))
    if in_flight(post):
        db.session.rollback()
        raise Conflict(_l("The letter is being sent electronically. Record it as sent on paper only if that "
                          "dispatch fails or is handled manually at SvarUt."))
    if not expedite(post, on, PAPER, actor):
        db.session.rollback()
        raise Conflict(_l("The letter is recorded as sent already."))
    db.session.commit()
    return post


def expedited_on_paper(post_id: int) -> bool:
    """Read fresh (after the row lock of a dispatch request): has the letter gone on paper?"""
    return db.session.scalar(select(JournalPost.expedition).where(JournalPost.id == post_id)) == PAPER
