"""A letter's PDF as its post's main document: rendered from the letter's text when it is out of date.

The post's own actions (send to approval, finalize, the handler's signature) call ensure_document in
their transaction before they check that a main document exists, so the document they approve, sign,
finalize, archive and dispatch is the letter as last saved. This module imports nothing from cases/,
which imports it.
"""
from __future__ import annotations

import hashlib
import io
import re

from sqlalchemy import select

from ..activity import service as activity
from ..clock import today
from ..extensions import db
from ..files.storage import store_upload
from ..models import Document, JournalPost, PostSignature, PostStatus, PostType, User
from ..models.letters import Letter
from . import letterhead, pdf
from .context import party_of


def letter_of(post: JournalPost, for_update: bool = False) -> Letter | None:
    """The letter written in the app for this post, if it has one; for_update takes its row lock (on
    PostgreSQL), so a save cannot change the text between its rendering and the action's commit."""
    query = select(Letter).where(Letter.post_id == post.id)
    return db.session.scalar(query.with_for_update() if for_update else query)


def is_signed(post: JournalPost) -> bool:
    """The post's main document carries a signature (signing replaced it with the signed file)."""
    main = post.main_document
    if main is None:
        return False
    return db.session.scalar(select(PostSignature.id).where(
        PostSignature.post_id == post.id, PostSignature.signed_sha256 == main.sha256).limit(1)) is not None


def page_for(post: JournalPost, letter: Letter | None = None) -> pdf.LetterPage:
    """Everything the letter's PDF shows, from the post, its case and its letter as they are now.

    The approver is named only once they approved: the PDF is made while the letter is a draft, and the
    leader asked is not always the one who approves (a leader may approve a post waiting for another),
    so the approval shows as the approver's signature on the PDF and in the journal, not as a line."""
    letter = letter or letter_of(post)
    approver = post.approved_by
    return pdf.LetterPage(
        title=post.title, body=letter.body if letter else "", case_number=post.case.number,
        post_type=post.post_type.value, day=post.document_date or today(), handler=post.created_by.full_name,
        letterhead=letterhead.current(),
        recipients=[party_of(c) for c in post.correspondents] if post.post_type == PostType.U else [],
        approver=approver.full_name if approver else "",
        legal_basis=post.legal_basis if post.exempt else "", lang="nn")


def file_name(post: JournalPost) -> str:
    """The main document's file name: the post's number and title, safe for any file system."""
    stem = re.sub(r"[^\w.-]+", "-", f"{post.number} {post.title}".strip(), flags=re.UNICODE).strip("-.")
    return f"{stem[:100] or 'brev'}.pdf"


def inputs_digest(page: pdf.LetterPage) -> str:
    """A digest of everything the PDF shows: the layout's HTML for this page (rendering is deterministic)."""
    return hashlib.sha256(pdf.html(page).encode("utf-8")).hexdigest()


def up_to_date(post: JournalPost, letter: Letter, page: pdf.LetterPage | None = None) -> bool:
    """Whether the post's main document is the letter's PDF as it would be rendered now: same text,
    title, recipients, letterhead, approver and date."""
    main = post.main_document
    if main is None or main.sha256 != letter.rendered_sha256 or letter.rendered_version != letter.version:
        return False
    return letter.rendered_inputs == inputs_digest(page or page_for(post, letter))


def ensure_document(actor: User, post: JournalPost, new_files: list[str]) -> None:
    """Make the letter's PDF the post's main document if the letter changed since it was last rendered.

    Only a draft is rendered again, and never once signed (the signature is on the document as it
    is). new_files collects the digest of a file stored first here, so a failing transaction removes it."""
    letter = letter_of(post, for_update=True)
    if letter is None or post.status != PostStatus.DRAFT or is_signed(post):
        return
    page = page_for(post, letter)
    if up_to_date(post, letter, page):
        return
    stored = store_upload(io.BytesIO(pdf.render(page)), file_name(post))
    if stored.new and stored.sha256 not in new_files:
        new_files.append(stored.sha256)
    db.session.flush()  # the stored_file row before the document that names it
    main = post.main_document
    if main is None:
        position = min((d.position for d in post.documents), default=1) - 1
        post.documents.append(Document(role="main", position=position, filename=stored.filename,
                                       sha256=stored.sha256))
    else:
        main.sha256, main.filename = stored.sha256, stored.filename
    letter.rendered_version, letter.rendered_sha256 = letter.version, stored.sha256
    letter.rendered_inputs = inputs_digest(page)
    db.session.flush()
    activity.record("letter_rendered", actor=actor, object_type="journal_post", object_id=post.id,
                    after={"version": letter.version, "sha256": stored.sha256})
