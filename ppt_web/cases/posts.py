"""Journal posts: registration, documents, finalization, corrections, write-off, deletion."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO, NoReturn

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import addresses, form_tokens, validation
from ..activity import service as activity
from ..archive import outbox
from ..auth import scope
from ..auth.access import refused, require
from ..clock import today, utcnow
from ..errors import Conflict, DomainError, Invalid, raise_if
from ..extensions import changed_rows, db
from ..files.storage import checked_path, store_upload
from ..models import (
    Case,
    CaseCategory,
    CaseStatus,
    Correspondent,
    Document,
    InboxItem,
    JournalPost,
    MetadataCorrection,
    Organisation,
    PaperOriginal,
    PostStatus,
    PostType,
    User,
)
from ..models.domain import (
    DEFAULT_LEGAL_BASIS,
    LOCKED_STATUSES,
    OPEN_WORK_STATUSES,
    WRITE_OFF_METHODS,
    case_cohandler,
    masked_national_id,
)
from ..postreg.inbox import return_to_inbox
from ..transaction import transaction
from .expedite import on_finalized
from .history import event as event


@dataclass
class CorrespondentData:
    name: str = ""
    address: str = ""  # street lines, one per line (a one-line "street, postal code place" is split)
    organisation_id: int | None = None
    national_id: str = ""  # a guardian's, for digital dispatch (SvarUt person shipment)
    postal_code: str = ""
    city: str = ""
    country: str = "NO"  # ISO 3166 alpha-2


@dataclass
class Upload:
    stream: BinaryIO
    filename: str


@dataclass
class PostData:
    post_type: str
    title: str = ""
    document_date: date | None = None
    received_on: date | None = None
    sent_on: date | None = None
    registered_after_downtime: bool = False
    legal_basis: str = DEFAULT_LEGAL_BASIS
    correspondents: list[CorrespondentData] = field(default_factory=list)


def snapshot(post: JournalPost) -> dict:
    return {
        "type": post.post_type.value, "title": post.title,
        "document_date": post.document_date.isoformat() if post.document_date else None,
        "received_on": post.received_on.isoformat() if post.received_on else None,
        "sent_on": post.sent_on.isoformat() if post.sent_on else None,
        "correspondents": [c.name for c in post.correspondents],
        "correspondent_details": [_correspondent_text(c) for c in post.correspondents],
        "documents": [f"{d.role}:{d.filename}" for d in post.documents],
        "status": post.status.value,
        "after_downtime": post.registered_after_downtime,
    }


def _correspondent_text(c: Correspondent) -> str:
    """Name, address and (masked) national id: a correction of any of them is a change."""
    where = addresses.as_text(_address(c))
    text = f"{c.name}, {where}" if where else c.name
    return f"{text} [{masked_national_id(c.national_id)}]" if c.national_id else text


def _log(action: str, actor: User, post: JournalPost, before: dict | None = None, detail: str = "") -> None:
    activity.record(action, actor=actor, object_type="journal_post", object_id=post.id, before=before,
                    after=snapshot(post), detail=detail)


class ChangedMeanwhile(Conflict):
    """Someone changed the post between reading it and this action's change: look again."""

    def __init__(self):
        super().__init__(_l("The post has changed meanwhile. Open it again."))


def decide(post: JournalPost, conditions: tuple, refusal: Callable[[JournalPost], DomainError | None],
           seen: int | None = None, **values) -> None:
    """The action's change as one conditional UPDATE of the post row: of two requests at once, the
    row count says which one acts (docs/decisions.md, "One effect per action"). The loser's
    transaction is rolled back, and it gets the guard's answer on the post as it is now ("finalized
    already", ...), or ChangedMeanwhile. What the caller read before is only a first check.

    seen: the post's content_version the caller read before it looked at what the draft shows (rendered
    its letter, checked its files). The change then also needs that count unchanged, and counts it up:
    a change to the draft's content, or another action on it, that came in between refuses this one."""
    if seen is not None:
        conditions = (*conditions, JournalPost.content_version == seen)
        values["content_version"] = JournalPost.content_version + 1
    db.session.flush()
    if changed_rows(update(JournalPost).where(JournalPost.id == post.id, *conditions).values(**values)
                    .execution_options(synchronize_session=False)) != 1:
        post_id = post.id
        db.session.rollback()
        current = db.session.scalar(select(JournalPost).where(JournalPost.id == post_id))
        if current is None:
            raise Conflict(_l("The journal post is deleted already."))
        raise_if(refusal(current))
        raise ChangedMeanwhile()
    db.session.refresh(post)


def _correspondent_role(post_type: PostType) -> str:
    return "sender" if post_type == PostType.I else "recipient"


def _apply(post: JournalPost, data: PostData, today: date) -> None:
    """Check and set the metadata; drafts may be incomplete, finalization checks completeness."""
    post.title = " ".join((data.title or "").split())[:300]
    post.title_lower = post.title.lower()
    post.document_date = validation.not_in_future(data.document_date, "document_date", today)
    post.received_on = validation.not_in_future(data.received_on, "received_on", today) \
        if post.post_type == PostType.I else None
    post.sent_on = validation.not_in_future(data.sent_on, "sent_on", today) if post.post_type == PostType.U else None
    post.legal_basis = " ".join((data.legal_basis or DEFAULT_LEGAL_BASIS).split())[:200]
    post.exempt = True  # always on (docs/decisions.md, "Exemption from public access")
    post.registered_after_downtime = bool(data.registered_after_downtime)
    if post.registered_after_downtime:
        when = post.date_in_or_out or post.document_date
        if when is None or when >= today:
            raise Invalid(_l("A registration after downtime carries the earlier date the post really came in "
                             "or went out."), field="received_on" if post.post_type == PostType.I else "sent_on")
    _apply_correspondents(post, data.correspondents)


def _address(c: Correspondent) -> addresses.Address | None:
    """The correspondent's own address as stored (a row from before structured addresses is split)."""
    return addresses.structured(c.address or "", c.postal_code or "", c.city or "", c.country or "NO")


def _apply_correspondents(post: JournalPost, wanted: list[CorrespondentData]) -> None:
    """Replace the post's correspondents when what is wanted differs from what it has. A bad address
    field is refused naming the form's field (correspondents-<n>-postal_code, ...)."""
    rows = []
    for n, c in enumerate(wanted):
        org = db.session.get(Organisation, c.organisation_id) if c.organisation_id else None
        if c.organisation_id and org is None:
            raise Invalid(_l("Choose an organisation from the list."), field="correspondents")
        name = " ".join((c.name or "").split())[:200] or (org.name if org else "")
        if not name:
            continue
        nid = validation.national_id(c.national_id, "correspondents") if (c.national_id or "").strip() else None
        where = addresses.checked(c.address, c.postal_code, c.city, c.country, prefix=f"correspondents-{n}-")
        if where is None and org is not None:
            where = addresses.structured(org.address, "", "")
        rows.append(Correspondent(role=_correspondent_role(post.post_type), name=name,
                                  address="\n".join(where.lines) if where else "",
                                  postal_code=where.postal_code if where else "", city=where.city if where else "",
                                  country=where.country if where else "NO",
                                  organisation=org, org_number=org.org_number if org else None, national_id=nid))
    if [(r.name, _address(r), r.organisation.id if r.organisation else None, r.national_id) for r in rows] != \
            [(c.name, _address(c), c.organisation_id, c.national_id) for c in post.correspondents]:
        post.correspondents = rows


def registered_mail(document: Document) -> bool:
    """The document is mail as post registration filed it (its inbox item and paper original name it)."""
    return any(db.session.scalar(select(model.id).where(model.document_id == document.id).limit(1)) is not None
               for model in (InboxItem, PaperOriginal))


def _keep_registered_mail(document: Document, field: str | None = None) -> None:
    if registered_mail(document):
        raise Invalid(_l("This document is the mail as post registration filed it, and stays on the post. Add "
                         "an attachment; or, if the mail was filed wrongly, delete the post as misregistered "
                         "and the mail goes back to the inbox."), field=field)


def _store_files(post: JournalPost, main: Upload | None, attachments: list[Upload], new_hashes: list[str]) -> None:
    """Check and store uploads; new_hashes collects the files this request stored first, as it goes,
    so that a refusal half-way still lets the caller remove them."""
    if main is not None and post.main_document is not None:
        _keep_registered_mail(post.main_document, "main_document")
    position = max((d.position for d in post.documents), default=-1) + 1
    for role, upload in ([("main", main)] if main else []) + [("attachment", a) for a in attachments]:
        stored = store_upload(upload.stream, upload.filename)
        if stored.new and stored.sha256 not in new_hashes:
            new_hashes.append(stored.sha256)
        if role == "main":
            for old in [d for d in post.documents if d.role == "main"]:
                post.documents.remove(old)
        post.documents.append(Document(role=role, position=position, filename=stored.filename,
                                       sha256=stored.sha256))
        position += 1


def create_post(actor: User, case_id: int, data: PostData, main: Upload | None = None,
                attachments: list[Upload] | None = None, token: str | None = None) -> JournalPost:
    """Register a journal post (draft) in an open case, with its documents; once per form token."""
    with transaction() as new_files:
        return form_tokens.once(actor, token, "journal_post",
                                lambda: add_post(actor, case_id, data, main, attachments, new_files))


def add_post(actor: User, case_id: int, data: PostData, main: Upload | None = None,
             attachments: list[Upload] | None = None, new_files: list[str] | None = None) -> JournalPost:
    """create_post's work in the caller's transaction; the digests of files it stored first go to new_files."""
    new_files = [] if new_files is None else new_files
    case = scope.case(actor, case_id)
    require(actor, "journal", object_type="case", object_id=case.id)
    if case.status != CaseStatus.OPEN:
        raise Conflict(_l("The case is closed. Reopen it to register new posts."))
    try:
        post_type = PostType(data.post_type)
    except ValueError:
        raise Invalid(_l("Choose the type of journal post."), field="post_type") from None
    post = JournalPost(post_type=post_type, status=PostStatus.DRAFT, created_by=actor, registered_at=utcnow())
    _apply(post, data, today())
    _store_files(post, main, attachments or [], new_files)
    post.seq = _next_seq(case)
    post.case = case
    case.last_activity_at = utcnow()
    db.session.add(post)
    db.session.flush()
    _log("post_created", actor, post)
    return post


def _next_seq(case: Case) -> int:
    """The case's next post number, counted in the database: two handlers registering in one case at
    once get 6 and 7 (on PostgreSQL the second waits for the first's row lock), never 6 twice; and
    never in a case that a close at the same moment has closed."""
    seq = db.session.execute(update(Case).where(Case.id == case.id, Case.status == CaseStatus.OPEN)
                             .values(post_seq=func.coalesce(Case.post_seq, 0) + 1).returning(Case.post_seq)
                             .execution_options(synchronize_session=False)).scalar_one_or_none()
    if seq is None:  # closed since it was read (service.close_case takes the same row first)
        raise Conflict(_l("The case is closed. Reopen it to register new posts."))
    set_committed_value(case, "post_seq", seq)
    return seq


def edit_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not edit the post now (None: they may)."""
    if post.status == PostStatus.DISPATCHED:
        return Conflict(_l("The post has been dispatched and can never change."))
    if post.locked:
        return Conflict(_l("The post is finalized and cannot be edited. The administrative consultant can "
                           "correct its metadata."))
    if post.status != PostStatus.DRAFT:
        return Conflict(_l("The post is waiting for approval and is locked until it comes back."))
    if signed_letter(post):
        return Conflict(_l("The letter is signed: its PDF names the recipients and the title as they were. "
                           "Write a new letter to change them."))
    return refused(actor, "journal", "fix_misregistered", object_type="journal_post", object_id=post.id)


def main_signed(post: JournalPost) -> bool:
    """The post's main document carries a signature."""
    from ..letters.document import is_signed  # noqa: PLC0415 - letters/ builds on cases/

    return is_signed(post)


def signed_letter(post: JournalPost) -> bool:
    """A letter written in the app whose PDF is signed: what the PDF shows can no longer change."""
    from ..letters.document import letter_of  # noqa: PLC0415 - letters/ builds on cases/

    return letter_of(post) is not None and main_signed(post)


def editable(actor: User, post_id: int, lock: bool = False) -> JournalPost:
    """A post the actor may edit now (a draft), or a clear refusal. A first check: an edit ends with
    still_draft(), in its transaction. lock: an edit's own, read again with its row locked (PostgreSQL)
    before it writes anything, so that every writer locks the post before its case, as the actions on the
    post do (a release from hold back and an edit at once deadlocked: the edit's flush wrote the case first)."""
    post = scope.post(actor, post_id)
    if lock:
        db.session.refresh(post, with_for_update=True)
    raise_if(edit_refusal(actor, post))
    return post


def still_draft(actor: User, post: JournalPost, seen: int) -> None:
    """At the end of an edit, before its commit: the post is still a draft, and its content as the edit read
    it (seen: its content_version then), checked in the database with the edit (a conditional UPDATE of its
    row, which counts the content up). Sent to approval, signed or finalized since editable() looked (its
    PDF checks take seconds), the edit is rolled back and refused as edit_refusal says, so an approver never
    approves what changed after it was sent; a finalized post's trigger refusing the edit's flush is the same."""
    post_id = post.id  # not read from the post after a failed flush (its session must roll back first)
    try:
        decide(post, (JournalPost.status == PostStatus.DRAFT,), lambda current: edit_refusal(actor, current),
               seen=seen, status=PostStatus.DRAFT)
    except DBAPIError:
        refused_meanwhile(actor, post_id)


def refused_meanwhile(actor: User, post_id: int) -> NoReturn:
    """An edit's write refused by the database (the finalized post's trigger): rolled back, and answered as
    edit_refusal says of the post as it is now."""
    db.session.rollback()
    current = db.session.get(JournalPost, post_id)
    if current is not None:
        raise_if(edit_refusal(actor, current))
    raise ChangedMeanwhile()


def update_post(actor: User, post_id: int, data: PostData, main: Upload | None = None,
                attachments: list[Upload] | None = None) -> JournalPost:
    """Edit a draft (its handler, or fix_misregistered for misregistered posts)."""
    with transaction() as new_files:
        post = editable(actor, post_id, lock=True)
        seen = post.content_version
        from ..letters.document import letter_of  # noqa: PLC0415 - letters/ builds on cases/

        if main is not None and letter_of(post) is not None:
            raise Invalid(_l("This post's main document is made from its letter. Upload attachments only."),
                          field="main_document")
        before = snapshot(post)
        data.post_type = post.post_type.value
        try:
            _apply(post, data, today())
            _store_files(post, main, attachments or [], new_files)
            post.case.last_activity_at = utcnow()
        except DBAPIError:  # an autoflush met the trigger of a post finalized meanwhile
            refused_meanwhile(actor, post_id)
        still_draft(actor, post, seen)
        _log("post_updated", actor, post, before)
    return post


def remove_document(actor: User, post_id: int, document_id: int) -> JournalPost:
    post = editable(actor, post_id, lock=True)
    seen = post.content_version
    before = snapshot(post)
    doc = next((d for d in post.documents if d.id == document_id), None)
    if doc is None:
        raise Invalid(_l("That document is not on this post."))
    _keep_registered_mail(doc)
    post.documents.remove(doc)
    still_draft(actor, post, seen)
    _log("post_document_removed", actor, post, before, doc.filename)
    db.session.commit()
    return post


def delete_post(actor: User, post_id: int, reason: str) -> None:
    """Delete a misregistered post that is not finalized (fix_misregistered); the log keeps it."""
    post = scope.post(actor, post_id)
    raise_if(delete_refusal(actor, post))
    reason = validation.required_text(reason, "reason", 1000)
    # Take the row first: of two deletions at once one goes on, the other finds the post gone.
    decide(post, (JournalPost.status.in_(OPEN_WORK_STATUSES),), lambda p: delete_refusal(actor, p),
           status=JournalPost.status)
    activity.record("post_deleted", actor=actor, object_type="journal_post", object_id=post.id,
                    before={**snapshot(post), "number": post.number}, detail=reason)
    return_to_inbox(actor, post)  # mail filed to the wrong client goes back to the inbox, not away
    db.session.delete(post)
    db.session.commit()


def delete_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not delete the post as misregistered (None: they may)."""
    refusal = refused(actor, "fix_misregistered", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.locked:
        return Conflict(_l("A finalized post cannot be deleted."))
    if db.session.scalar(select(JournalPost.id).where(JournalPost.write_off_reply_id == post.id).limit(1)):
        return Conflict(_l("The post is the reply that writes off another post and cannot be deleted."))
    return None


def needs_approval(post: JournalPost) -> bool:
    """Expert assessments go out only after a leader's approval (the routine); other letters may."""
    return post.post_type == PostType.U and post.case.category == CaseCategory.EXPERT_ASSESSMENT


def missing_for_finalize(post: JournalPost) -> list[str]:
    missing = []
    if not post.title:
        missing.append(str(_l("title")))
    if post.post_type in (PostType.I, PostType.U) and not post.correspondents:
        missing.append(str(_l("sender") if post.post_type == PostType.I else _l("recipient")))
    if not post.document_date:
        missing.append(str(_l("document date")))
    if post.main_document is None:
        missing.append(str(_l("main document")))
    return missing


def finalize(actor: User, post_id: int) -> JournalPost:
    """Ferdigstill: after this nothing about the post or its files can change."""
    with transaction() as new_files:
        return finalize_checked(actor, post_id, new_files)


def finalize_checked(actor: User, post_id: int, new_files: list[str] | None = None) -> JournalPost:
    """finalize's checks and work in the caller's transaction (post registration files and finalizes at once)."""
    from ..letters.document import ensure_document  # noqa: PLC0415 - letters/ builds on cases/

    post = scope.post(actor, post_id)
    raise_if(finalize_refusal(actor, post))
    seen = post.content_version  # what is rendered and checked below is the draft as it is now
    ensure_document(actor, post, [] if new_files is None else new_files)  # a letter's PDF, before the checks
    finalize_post(actor, post, seen)
    return post


def finalize_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not finalize the post (None: they may, once nothing is missing)."""
    refusal = refused(actor, "journal", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.status == PostStatus.AWAITING_APPROVAL:
        return Conflict(_l("The post is waiting for approval; the approver finalizes it."))
    if needs_approval(post):
        return Conflict(_l("An expert assessment is finalized by the leader who approves it: send it to approval."))
    if post.locked:
        return Conflict(_l("The post is finalized already."))
    return held_back_refusal(post)


def held_back_refusal(post: JournalPost) -> DomainError | None:
    """Why a post held back from access may not be finalized yet: only the leader's release
    (cases/hold_back.py) lets it be finalized, and the release finalizes it itself."""
    if not post.held_back or post.locked or post.hold_decision == "released":
        return None
    if post.hold_decision == "kept":
        return Conflict(_l("The leader decided to keep the post held back from access; it is not finalized."))
    return Conflict(_l("The post is held back from access and waits for the leader's decision; it cannot be "
                       "finalized until the leader releases it."))


def finalize_post(actor: User, post: JournalPost, seen: int | None = None) -> None:
    """The change itself, in the caller's transaction: by the handler (finalize), the approver, or the
    leader releasing a held-back post. Every path meets the hold-back rule here. seen: the content_version
    the handler's finalize read before it rendered the letter; a change to the draft since refuses it (an
    approved or held-back post cannot change while it waits)."""
    if post.locked:
        raise Conflict(_l("The post is finalized already."))
    raise_if(held_back_refusal(post))
    missing = missing_for_finalize(post)
    if missing:
        raise Invalid(_l("The post cannot be finalized yet. Missing: %(items)s.", items=", ".join(missing)))
    for document in post.documents:  # finalized as stored: one missing or changed on disk refuses it (409)
        checked_path(document.sha256, document.filename)
    before = snapshot(post)
    # A handler finalizes a draft; an approval finalizes the post it has just approved.
    # A decision on a held-back post made meanwhile counts too.
    held_back_ok = JournalPost.held_back.is_(False) | (JournalPost.hold_decision == "released")
    decide(post, (JournalPost.status.in_((PostStatus.DRAFT, PostStatus.APPROVED)), held_back_ok),
           lambda p: Conflict(_l("The post is finalized already.")) if p.locked else held_back_refusal(p),
           seen=seen, status=PostStatus.FINALIZED, finalized_at=utcnow(), finalized_by_id=actor.id)
    post.case.last_activity_at = utcnow()
    _log("post_finalized", actor, post, before)
    outbox.post_finalized(post)
    on_finalized(post, actor)  # a letter registered after downtime as sent went on paper then


# What a metadata correction may change (title, dates, correspondents), as keys of snapshot().
METADATA_FIELDS = ("title", "document_date", "received_on", "sent_on", "correspondents", "correspondent_details")


def correct_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not correct the post's metadata (None: they may)."""
    refusal = refused(actor, "correct_metadata", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.status == PostStatus.DISPATCHED:
        return Conflict(_l("The post has been dispatched and can never change, not even its metadata."))
    if post.status != PostStatus.FINALIZED:
        return Conflict(_l("Only finalized posts get metadata corrections; drafts are simply edited."))
    return None


def correct_metadata(actor: User, post_id: int, reason: str, data: PostData,
                     version: int | None = None) -> MetadataCorrection:
    """Correct a finalized post's metadata (correct_metadata only); old and new values are kept.

    version is the post's correction_version() when the form was shown: a correction made since
    refuses this one (ChangedMeanwhile), so no one overwrites a correction they never saw. Two at
    once: the conditional UPDATE of the post's correction_id lets one through."""
    post = scope.post(actor, post_id)
    raise_if(correct_refusal(actor, post))
    if version is not None and version != correction_version(post):
        raise ChangedMeanwhile()
    reason = " ".join((reason or "").split())
    if not reason:
        raise Invalid(_l("Give the reason for the correction."), field="reason")
    now_date = today()
    before = {k: v for k, v in snapshot(post).items() if k in METADATA_FIELDS}
    title = validation.required_text(data.title, "title")
    document_date = validation.not_in_future(data.document_date, "document_date", now_date)
    if document_date is None:
        raise Invalid(_l("This field is required."), field="document_date")
    received_on = (validation.not_in_future(data.received_on, "received_on", now_date)
                   if post.post_type == PostType.I else None)
    sent_on = validation.not_in_future(data.sent_on, "sent_on", now_date) if post.post_type == PostType.U else None
    correction = MetadataCorrection(post_id=post.id, actor_id=actor.id, reason=reason, before=before, after={},
                                    applying=True, at=utcnow())
    db.session.add(correction)
    db.session.flush()
    # The post as read (its last correction) is the condition: a correction made meanwhile wins.
    seen = JournalPost.correction_id.is_(None) if post.correction_id is None \
        else JournalPost.correction_id == post.correction_id
    # One UPDATE points the post at the applying correction and changes its metadata: the triggers
    # allow exactly that.
    decide(post, (seen, JournalPost.status == PostStatus.FINALIZED), lambda p: correct_refusal(actor, p),
           correction_id=correction.id, title=title, title_lower=title.lower(), document_date=document_date,
           received_on=received_on, sent_on=sent_on)
    _apply_correspondents(post, data.correspondents)
    if post.post_type in (PostType.I, PostType.U) and not post.correspondents:
        raise Invalid(_l("This field is required."), field="correspondents")
    db.session.flush()
    after = {k: v for k, v in snapshot(post).items() if k in METADATA_FIELDS}
    if after == before:
        db.session.rollback()
        raise Invalid(_l("Nothing was changed."))
    correction.after, correction.applying = after, False  # one UPDATE: the trigger allows exactly this
    activity.record("post_metadata_corrected", actor=actor, object_type="journal_post", object_id=post.id,
                    before=before, after=after, detail=reason)
    outbox.restart_unarchivable(post.case, actor)  # what failed on the old text goes out before the correction
    outbox.metadata_corrected(post, correction)
    db.session.commit()
    return correction


def correction_version(post: JournalPost) -> int:
    """What a correction form carries to say which state of the post it shows: its last correction."""
    return post.correction_id or 0


# The journal post types Noark writes off: incoming letters (I) and internal notes that ask for
# follow-up (N). Notes without follow-up (X) and outgoing letters (U) leave nothing outstanding.
WRITTEN_OFF_TYPES = (PostType.I, PostType.N)


def write_off_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not write the post off (None: they may)."""
    refusal = refused(actor, "journal", object_type="journal_post", object_id=post.id)
    if refusal is not None:
        return refusal
    if post.post_type not in WRITTEN_OFF_TYPES:
        return Conflict(_l("Only incoming posts and notes for follow-up are written off."))
    if post.written_off_at is not None:
        return Conflict(_l("The post is written off already."))
    if not post.locked:
        if post.post_type == PostType.I:
            return Conflict(_l("Finalize the incoming post before it is written off."))
        return Conflict(_l("Finalize the post before it is written off."))
    return None


def write_off(actor: User, post_id: int, method: str, reply_post_id: int | None = None) -> JournalPost:
    """Write off (avskriv) an incoming post or a note for follow-up: by a reply (BU, linked) or another
    Noark method."""
    post = scope.post(actor, post_id)
    raise_if(write_off_refusal(actor, post))
    if method not in WRITE_OFF_METHODS:
        raise Invalid(_l("Choose how the post is written off."), field="method")
    reply = None
    if method == "BU":
        reply = db.session.get(JournalPost, reply_post_id) if reply_post_id else None
        if reply is None or reply.case_id != post.case_id or reply.post_type != PostType.U:
            raise Invalid(_l("Choose the outgoing reply in the same case."), field="reply_post_id")
        if not reply.locked:
            raise Invalid(_l("Finalize the reply first: a post is written off by a finalized reply."),
                          field="reply_post_id")
    write_off_post(actor, post, method, reply)
    db.session.commit()
    return post


def write_off_post(actor: User, post: JournalPost, method: str, reply: JournalPost | None = None) -> None:
    """The write-off itself, in the caller's transaction: one conditional UPDATE, its activity row and
    its archive job. The single write-off and the closing of a case both come here."""
    before = snapshot(post)
    decide(post, (JournalPost.written_off_at.is_(None), JournalPost.status.in_(LOCKED_STATUSES)),
           lambda p: write_off_refusal(actor, p), written_off_at=utcnow(), write_off_method=method,
           written_off_by_id=actor.id, write_off_reply_id=reply.id if reply else None)
    _log("post_written_off", actor, post, before, method + (f" {reply.number}" if reply else ""))
    outbox.post_written_off(post)


def outstanding_posts() -> tuple:
    """What makes a post outstanding, whoever looks: incoming and not written off."""
    return JournalPost.post_type == PostType.I, JournalPost.written_off_at.is_(None)


def outstanding_clauses(actor: User, handler_id: int | None) -> list:
    """The restanseliste's conditions on JournalPost joined to its Case."""
    clauses = [*outstanding_posts(), scope.case_clause(actor)]
    if handler_id is not None:  # that handler's cases: responsible or co-handler
        clauses.append(or_(Case.handler_id == handler_id, Case.co_handlers.any(User.id == handler_id)))
    return clauses


def outstanding(actor: User, handler_id: int | None = None, limit: int = 500) -> list[JournalPost]:
    """Restanseliste: incoming posts not written off, oldest first by the document's own date (its
    document date, else the date received, else when it was registered).

    Within the actor's scope: a handler's own and co-handled cases; everyone's with search_all.
    handler_id narrows it to the cases that user handles or co-handles (the list's handler filter)."""
    require(actor, "search_own", "search_all")
    query = (select(JournalPost).join(Case, JournalPost.case_id == Case.id)
             .where(*outstanding_clauses(actor, handler_id))
             .options(joinedload(JournalPost.case).joinedload(Case.client),
                      joinedload(JournalPost.case).joinedload(Case.handler))
             .order_by(*outstanding_order()).limit(limit))
    return list(db.session.scalars(query))


def outstanding_order() -> tuple:
    """The restanseliste's order: the document's own date (its document date, else the date received,
    else when it was registered), then registration, then id."""
    day = func.coalesce(JournalPost.document_date, JournalPost.received_on,
                        func.date(JournalPost.registered_at, type_=Date))
    return day, JournalPost.registered_at, JournalPost.id


def outstanding_count(actor: User, handler_id: int | None = None) -> int:
    """How many posts outstanding() would list without its limit."""
    require(actor, "search_own", "search_all")
    return db.session.scalar(select(func.count(JournalPost.id)).join(Case, JournalPost.case_id == Case.id)
                             .where(*outstanding_clauses(actor, handler_id))) or 0


def outstanding_handlers() -> list[User]:
    """The restanseliste's handler filter: users who handle or co-handle an open case, by name."""
    co = select(case_cohandler.c.user_id).join(Case, Case.id == case_cohandler.c.case_id) \
        .where(Case.status == CaseStatus.OPEN)
    own = select(Case.handler_id).where(Case.status == CaseStatus.OPEN)
    return list(db.session.scalars(select(User).where(or_(User.id.in_(own), User.id.in_(co)))
                                   .order_by(User.full_name, User.id)))


def open_document(actor: User, document_id: int) -> Document:
    """A document for reading in the browser; every opening is logged."""
    doc = scope.document(actor, document_id)
    activity.record("document_opened", actor=actor, object_type="journal_post", object_id=doc.post_id,
                    detail=f"document {doc.id}")
    db.session.commit()
    return doc


def open_post(actor: User, post_id: int) -> JournalPost:
    post = scope.post(actor, post_id)
    activity.record("post_opened", actor=actor, object_type="journal_post", object_id=post.id)
    db.session.commit()
    return post


def corrections(post: JournalPost) -> list[MetadataCorrection]:
    return list(db.session.scalars(select(MetadataCorrection).where(MetadataCorrection.post_id == post.id)
                                   .order_by(MetadataCorrection.id)))
