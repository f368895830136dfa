"""Letters on a case: made from a template, written in the editor, rendered to the post's main document.

recipient_choices(actor, case) -> list[Choice]    who a letter in this case may go to: the guardians
    known in the case (with their national id for digital post), the client's school or kindergarten
    (organisation, with org number), earlier senders in the case and the recipients of its earlier
    outgoing (U) posts (a national id only when they had one), and the client (a correspondent with the
    client's own national id: never offered as a guardian). A Choice's key is stable and never holds a
    national id.
new_letter(actor, case_id, template_id, recipient_keys, token=None) -> JournalPost
    a draft U/N post (the template's post type, default title, legal basis) with the chosen
    correspondents (one post, several correspondents), and its Letter: the template's current
    version merged and sanitized. Journal permission on the case; an active template only; once per
    form token. The letter's PDF is its main document from the start (ensure_document).
save(actor, post_id, body, version) -> Letter
    sanitize, store, version+1. The same text as the letter's now is no change and no conflict, whatever
    version came with it (a second flush or the page's last beacon of text already saved). Refused
    (Conflict) when the post is not a draft, is signed, or version != the letter's (someone saved
    meanwhile: the message says who and when; nothing saved).
preview(actor, post_id) -> bytes        a draft's PDF as it would be sent now (not stored); once the
    post is no longer a draft (or is signed), its stored main document: what was approved and sent.
ensure_document, page_for, letter_of: see document.py (the part cases/ calls).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select, update
from sqlalchemy.exc import DBAPIError

from .. import form_tokens
from ..activity import service as activity
from ..auth import scope
from ..cases import posts
from ..cases.posts import CorrespondentData
from ..clock import today, utcnow
from ..errors import Conflict, DomainError, Invalid, NotFound, raise_if
from ..extensions import changed_rows, db
from ..files.storage import read_checked
from ..i18n import format_oslo
from ..models import Case, Correspondent, Document, JournalPost, PostSignature, PostStatus, PostType, User
from ..models.letters import TEMPLATE_POST_TYPES, DocumentTemplate, DocumentTemplateVersion, Letter
from ..transaction import transaction
from . import context, pdf, sanitize
from .document import ensure_document, is_signed, letter_of, page_for
from .merge import Party, merge

__all__ = ["Choice", "ensure_document", "letter_of", "new_letter", "page_for", "preview", "recipient_choices",
           "save", "save_refusal"]

MAX_BODY_CHARS = 4 * 1024 * 1024
# Autosaves by the same writer within this many seconds of their last one share one activity row.
QUIET_SAVE_SECONDS = 600


@dataclass
class Choice:
    """A possible recipient: key (stable, no national id in it), what the form shows, what it becomes."""

    key: str
    label: str
    data: CorrespondentData
    kind: str  # "guardian" | "organisation" | "sender" | "recipient" | "client"


def recipient_choices(actor: User, case: Case) -> list[Choice]:
    """Who a letter in this case may go to (see the module). The actor must see the case."""
    case = scope.case(actor, case.id)
    out: list[Choice] = []
    names: set[str] = set()
    rows = context.correspondents(case)
    client = case.client
    client_id = client.national_id if client else None
    for c in context.guardian_rows(case, rows):  # the same guardians the letter's merge fields name
        names.add(c.name.casefold())
        out.append(Choice(f"g{c.id}", c.name, _data_of(c), "guardian"))
    org = (client.organisation if client else None) or case.organisation
    if org is not None and org.name.casefold() not in names:
        names.add(org.name.casefold())
        out.append(Choice(f"o{org.id}", org.name + (f" ({org.org_number})" if org.org_number else ""),
                          CorrespondentData(name=org.name, organisation_id=org.id), "organisation"))
    outgoing = {p for p in db.session.scalars(select(JournalPost.id).where(JournalPost.case_id == case.id,
                                                                         JournalPost.post_type == PostType.U))}
    for c in rows:  # earlier senders, and the recipients of earlier outgoing letters
        kind = "client" if client_id and c.national_id == client_id else \
            "sender" if c.role == "sender" else "recipient" if c.post_id in outgoing else ""
        if kind and c.name.casefold() not in names:
            names.add(c.name.casefold())
            out.append(Choice(f"{kind[0]}{c.id}", c.name, _data_of(c), kind))
    return out


def _data_of(c: Correspondent) -> CorrespondentData:
    return CorrespondentData(name=c.name, address=c.address or "", organisation_id=c.organisation_id,
                             national_id=c.national_id or "", postal_code=c.postal_code or "", city=c.city or "",
                             country=c.country or "NO")


def active_template(template_id: int | None) -> DocumentTemplate:
    """A template a letter may be made from now, or Invalid naming the template field."""
    template = db.session.get(DocumentTemplate, template_id) if template_id else None
    if template is None or template.retired or template.post_type not in TEMPLATE_POST_TYPES:
        raise Invalid(_l("Choose a template from the list."), field="template_id")
    return template


def new_letter(actor: User, case_id: int, template_id: int | None, recipient_keys: list[str],
               token: str | None = None) -> JournalPost:
    """A draft post with its letter from the template, to the chosen recipients; once per form token."""
    with transaction() as new_files:
        return form_tokens.once(actor, token, "journal_post",
                                lambda: _new_letter(actor, case_id, template_id, recipient_keys, new_files))


def _new_letter(actor: User, case_id: int, template_id: int | None, recipient_keys: list[str],
                new_files: list[str]) -> JournalPost:
    case = scope.case(actor, case_id)
    template = active_template(template_id)
    choices = {c.key: c for c in recipient_choices(actor, case)}
    keys = list(dict.fromkeys(k for k in recipient_keys if k))
    if any(k not in choices for k in keys):
        raise Invalid(_l("Choose the recipients from the list."), field="recipients")
    chosen = [choices[k] for k in keys]
    if template.post_type == PostType.U and not chosen:
        raise Invalid(_l("Choose at least one recipient."), field="recipients")
    data = posts.PostData(post_type=template.post_type.value, title=template.default_title or template.name,
                          document_date=today(), legal_basis=template.legal_basis,
                          correspondents=[c.data for c in chosen])
    post = posts.add_post(actor, case.id, data, new_files=new_files)  # journal permission, open case
    version = db.session.scalar(select(DocumentTemplateVersion).where(
        DocumentTemplateVersion.template_id == template.id, DocumentTemplateVersion.number == template.version))
    source = version.body if version is not None else template.body
    recipients = [Party(c.name, c.address or "", c.postal_code or "", c.city or "") for c in post.correspondents]
    values = context.context(actor, case, recipients, show_national_id=template.show_national_id)
    letter = Letter(post_id=post.id, template_version_id=version.id if version else None,
                    body=sanitize.clean(merge(source, values)), version=1, updated_at=utcnow(), updated_by_id=actor.id)
    db.session.add(letter)
    db.session.flush()
    activity.record("letter_created", actor=actor, object_type="journal_post", object_id=post.id,
                    after={"template": template.name, "template_version": version.number if version else None})
    ensure_document(actor, post, new_files)
    return post


def save_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the actor may not change the post's letter now (None: they may)."""
    refusal = posts.edit_refusal(actor, post)
    if refusal is not None:
        return refusal
    if is_signed(post):
        return Conflict(_l("The letter is signed and can no longer change."))
    return None


def _written(post_id: int) -> tuple[JournalPost, Letter]:
    post = db.session.get(JournalPost, post_id)
    letter = letter_of(post) if post is not None else None
    if post is None or letter is None:
        raise NotFound(object_type="journal_post", object_id=post_id)
    return post, letter


def changed_meanwhile(letter: Letter) -> Conflict:
    who = letter.updated_by.full_name if letter.updated_by else "?"
    return Conflict(_l("%(name)s saved this letter at %(when)s, after you opened it. Your latest text was NOT "
                       "saved: copy it, reload the page and add it again.", name=who,
                       when=format_oslo(letter.updated_at)))


def save(actor: User, post_id: int, body: str, version: int | None) -> Letter:
    """Keep the editor's text (sanitized) as the letter's next version; refused if someone saved meanwhile."""
    with transaction():
        post = scope.post(actor, post_id)
        post, letter = _written(post.id)
        seen = post.content_version
        raise_if(save_refusal(actor, post))
        if len(body or "") > MAX_BODY_CHARS:
            if version != letter.version:
                raise changed_meanwhile(letter)
            raise Invalid(_l("The letter is too long to be saved."), field="body")
        text = sanitize.clean(body or "")
        if text == letter.body:  # nothing new: not a conflict even on an older version
            return letter
        if version != letter.version:
            raise changed_meanwhile(letter)
        quiet = (letter.updated_by_id == actor.id and letter.updated_at is not None
                 and (utcnow() - letter.updated_at).total_seconds() < QUIET_SAVE_SECONDS)
        # One conditional UPDATE: of two saves on the same version, one wins; the other is told who.
        # Only while the post is a draft, checked in the same statement: a send to approval or a finalize
        # that rendered the letter meanwhile (it holds the row's lock on PostgreSQL) makes this a refusal.
        db.session.flush()
        still_draft = select(JournalPost.id).where(JournalPost.id == Letter.post_id,
                                                   JournalPost.status == PostStatus.DRAFT).exists()
        # Nor once a signature on the post's main document was committed meanwhile (is_signed, in the statement).
        signed = (select(PostSignature.id)
                  .join(Document, and_(Document.post_id == PostSignature.post_id, Document.role == "main",
                                       Document.sha256 == PostSignature.signed_sha256))
                  .where(PostSignature.post_id == Letter.post_id).exists())
        try:
            changed = changed_rows(
                update(Letter).where(Letter.id == letter.id, Letter.version == version, still_draft, ~signed)
                .values(body=text, version=Letter.version + 1, updated_at=utcnow(), updated_by_id=actor.id)
                .execution_options(synchronize_session=False))
        except DBAPIError:  # the finalized post's trigger, or SQLite's writer that finalized first
            changed = 0
        if changed != 1:
            letter_id = letter.id
            db.session.rollback()
            current = db.session.get(Letter, letter_id)
            if current is None:
                raise NotFound(object_type="journal_post", object_id=post_id)
            raise_if(save_refusal(actor, current.post))
            raise changed_meanwhile(current)
        # The post's content counted up, on the count read above: a signature, a send to approval or a
        # finalize that rendered the letter meanwhile refuses this save (and a save in between refuses them).
        try:
            posts.decide(post, (JournalPost.status == PostStatus.DRAFT,),
                         lambda current: save_refusal(actor, current), seen=seen)
        except posts.ChangedMeanwhile:  # the post was edited meanwhile (its title, recipients): say so, keep the text
            raise Conflict(_l("The post was changed while your text was being saved. Your latest text was NOT "
                              "saved: copy it, reload the page and add it again.")) from None
        db.session.refresh(letter)
        if not quiet:
            activity.record("letter_saved", actor=actor, object_type="journal_post", object_id=post.id,
                            after={"version": letter.version})
        post.case.last_activity_at = utcnow()
    return letter


def preview(actor: User, post_id: int) -> bytes | None:
    """A draft letter's PDF as it would be made now (not stored); once the post is no longer a draft or is
    signed, its stored main document (what was approved and sent). None for a post without a letter; logged."""
    post = scope.post(actor, post_id)
    letter = letter_of(post)
    if letter is None:
        return None
    main = post.main_document
    if main is not None and (post.status != PostStatus.DRAFT or is_signed(post)):
        data = read_checked(main.sha256, main.filename)
    else:
        data = pdf.render(page_for(post, letter))
    activity.record("letter_previewed", actor=actor, object_type="journal_post", object_id=post.id)
    db.session.commit()
    return data


def opened(actor: User, post_id: int) -> tuple[JournalPost, Letter | None]:
    """The post and its letter (None: it has none) for the editor page, by the post's access rules; logged."""
    post = scope.post(actor, post_id)
    letter = letter_of(post)
    activity.record("post_opened", actor=actor, object_type="journal_post", object_id=post.id, detail="letter")
    db.session.commit()
    return post, letter
