"""Electronic signing of outgoing letters: by the handler before finalize, or by the approver on approval.
The signature itself is ppt_web/signing.py (pyHanko); this is the case side: who may sign, the stored
signed file, the post's history, and checking the signature when the post is shown. With no certificate
configured the app's test certificate signs (ppt_web/signing_setup.py), and the post page says so."""
import dataclasses
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import NoReturn

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.attributes import set_committed_value

from .. import runtime_settings, signing_setup
from ..activity import service as activity
from ..auth import scope
from ..auth.access import refused, require
from ..clock import utcnow
from ..errors import Conflict, DomainError, Invalid, raise_if
from ..extensions import changed_rows, db
from ..files.storage import StoredFileFault, read_checked, store_upload
from ..models import Document, JournalPost, PostSignature, PostStatus, PostType, User
from ..transaction import transaction
from . import posts
from .posts import event, needs_approval


def sign_refusal(actor: User, post: JournalPost) -> DomainError | None:
    """Why the handler may not sign the post now (None: they may). The approver signs on approval instead."""
    refusal = (refused(actor, "journal", object_type="journal_post", object_id=post.id)
               or refused(actor, "esign", object_type="journal_post", object_id=post.id))
    if refusal is not None:
        return refusal
    if post.status != PostStatus.DRAFT:
        return Conflict(_l("Only a draft can be signed by its handler; the approver signs on approval."))
    if needs_approval(post):
        return Conflict(_l("An expert assessment is signed by the approver on approval."))
    if post.post_type != PostType.U:
        return Conflict(_l("Only an outgoing letter is signed."))
    if post.main_document is None:
        return Invalid(_l("There is no main document to sign."))
    if posts.main_signed(post):
        return Conflict(_l("The main document is signed already."))
    return None


def sign(actor: User, post_id: int) -> JournalPost:
    """The handler signs a letter that needs no approval (a draft), before finalizing it.

    Signing takes seconds. The signed file replaces the main document only if that is still the document
    that was signed, and the post is still a draft that may be signed, both checked in the database at the
    end (conditional UPDATEs of the document and the post row): a main document replaced, or the post sent
    to approval or finalized, meanwhile refuses the signature, and the transaction's clean-up removes the
    signed file."""
    from ..letters.document import ensure_document  # noqa: PLC0415 - letters/ builds on cases/

    post = scope.post(actor, post_id)
    with transaction() as signed:
        seen = post.content_version  # the draft as it is now is what gets rendered and signed
        ensure_document(actor, post, signed)  # a letter's PDF as last saved is what gets signed
        raise_if(sign_refusal(actor, post))
        guard = partial(sign_refusal, actor)
        _sign(actor, post, signed, refusal=guard)
        posts.decide(post, (JournalPost.status == PostStatus.DRAFT, JournalPost.post_type == PostType.U), guard,
                     seen=seen, status=PostStatus.DRAFT)
    return post


def _sign(actor: User, post: JournalPost, new_files: list[str], authorised: bool = False,
          refusal: Callable[[JournalPost], DomainError | None] | None = None) -> str:
    """Sign the main document with the service's certificate; the signed file replaces it in the post,
    if the main document is still what was signed (refused otherwise, as refusal says of the post now).

    The signed file's digest goes to new_files as soon as it is stored (for clean-up if the transaction
    fails); it is also returned."""
    if not authorised:
        require(actor, "esign", object_type="journal_post", object_id=post.id)
    main = post.main_document
    if main is None:
        raise Invalid(_l("There is no main document to sign."))
    location = runtime_settings.value("letters.signing_location") or ""
    signing = _signing()
    try:
        use = signing_setup.credentials()  # the configured certificate, else the test one (made if missing)
        signer = signing.load_signer(use.p12, use.password)
        signed = signing.sign_pdf(read_checked(main.sha256, main.filename), signer, signer_name=actor.full_name,
                                  reason=str(_l("Approved and signed")), location=location,
                                  test=use.test)
    except (signing.SigningError, signing_setup.SetupError) as exc:
        # The detail may name a server path: it goes to the log, the user gets what to do.
        logging.getLogger(__name__).warning("signing post %s failed: %s", post.id, exc)
        raise Conflict(_l("The document could not be signed. Check that it is an ordinary PDF, or tell the "
                          "administrator (the signing certificate may be missing or expired).")) from exc
    stored = store_upload(io.BytesIO(signed), main.filename)
    if stored.new and stored.sha256 not in new_files:
        new_files.append(stored.sha256)
    unsigned = main.sha256
    subject = _subject(signer)
    post_id = post.id  # not read from the post after a failed flush (its session must roll back first)
    try:
        db.session.flush()  # the stored_file row before the rows that refer to it
        # The main document as it was signed, or nothing: one replaced (or re-rendered) meanwhile is kept.
        if changed_rows(update(Document).where(Document.id == main.id, Document.post_id == post.id,
                                               Document.role == "main", Document.sha256 == unsigned)
                        .values(sha256=stored.sha256).execution_options(synchronize_session=False)) != 1:
            _refused_meanwhile(post_id, refusal)
        set_committed_value(main, "sha256", stored.sha256)
        db.session.add(PostSignature(post_id=post.id, unsigned_sha256=unsigned, signed_sha256=stored.sha256,
                                     signed_by_id=actor.id, signed_at=utcnow(), certificate_subject=subject))
        db.session.flush()
    except DBAPIError:  # a finalized post's triggers refuse the change (finalized meanwhile)
        _refused_meanwhile(post_id, refusal)
    if use.test:
        event(post, actor, "signed", certificate=subject, test_certificate=True)
    else:
        event(post, actor, "signed", certificate=subject)
    after: dict[str, object] = {"document": main.filename, "certificate": subject}
    if use.test:
        after["test_certificate"] = True
    activity.record("post_signed", actor=actor, object_type="journal_post", object_id=post.id, after=after)
    return stored.sha256


def _refused_meanwhile(post_id: int, refusal: Callable[[JournalPost], DomainError | None] | None) -> NoReturn:
    """The signature's write found the main document changed, or was refused by the database: rolled back,
    and answered as refusal says of the post as it is now, else that the document changed."""
    db.session.rollback()
    current = db.session.get(JournalPost, post_id)
    if current is None:
        raise Conflict(_l("The journal post is deleted already."))
    if refusal is not None:
        raise_if(refusal(current))
    raise Conflict(_l("The main document changed while it was being signed, so it was not signed. "
                      "Look at it and sign again."))


def _subject(signer) -> str:
    try:
        return signer.signing_cert.subject.human_friendly[:400]
    except AttributeError:
        return ""


def signature_status(post: JournalPost) -> list:
    """Whether the main document's signatures still verify (checked on the stored bytes, each time).

    A status is marked `test` when its certificate is the app's test certificate (by fingerprint, or by
    the test certificate's name for one made by an earlier test certificate)."""
    main = post.main_document
    if main is None or not any(s.signed_sha256 == main.sha256 for s in signatures(post)):
        return []
    roots = []
    ca = current_app.config.get("PPT_SIGNING_TRUST_ROOT")
    if ca:
        roots = [Path(ca).read_bytes()]
    signing = _signing()
    try:
        statuses = signing.verify_pdf(read_checked(main.sha256, main.filename), trust_roots=roots,
                                      test_certificates=signing_setup.test_fingerprints())
    except StoredFileFault:
        # The stored bytes are not those that were signed (missing, or changed on disk, also where the signed
        # byte range is untouched): the signature does not verify, whatever a check of the bytes would say.
        return [signing.SignatureStatus(signed=True, signer_subject="", signed_at=None, intact=False, valid=False,
                                        trusted=False, covers_whole_file=False,
                                        summary="The stored file is missing or has changed since it was stored.")]
    except (signing.SigningError, OSError):
        return []
    return [dataclasses.replace(s, test=True) if not s.test and signing_setup.is_test_subject(s.signer_subject)
            else s for s in statuses]


def _signing():
    """ppt_web.signing, loaded on first use: pyHanko takes half a second to import (every web, worker and
    CLI process would pay it at start), and with cryptography 51 it warns at import. Loaded here, inside a
    request or job, that warning is a log record in the configured format, not a raw line on stderr."""
    from .. import signing  # noqa: PLC0415 - see the docstring

    return signing


@dataclass(frozen=True)
class Signature:
    """A signature put on the post, as its page lists it."""

    row: PostSignature
    test: bool  # made with the app's test certificate: not a valid electronic signature

    @property
    def signed_by(self) -> User:
        return self.row.signed_by

    @property
    def signed_at(self) -> datetime:
        return self.row.signed_at

    @property
    def certificate_subject(self) -> str:
        return self.row.certificate_subject

    @property
    def signed_sha256(self) -> str:
        return self.row.signed_sha256


def signatures(post: JournalPost) -> list[Signature]:
    """The post's signatures, oldest first; the row records the certificate's subject, which for the test
    certificate names it as such."""
    rows = db.session.scalars(select(PostSignature).where(PostSignature.post_id == post.id)
                              .order_by(PostSignature.id))
    return [Signature(row, signing_setup.is_test_subject(row.certificate_subject)) for row in rows]


def sign_for_approver(actor: User, post: JournalPost, new_files: list[str]) -> str:
    """The approver's signature, given with the approval (which is what authorises it: no esign needed).
    Runs in the approval's transaction; the signed file's digest goes to new_files and is returned."""
    return _sign(actor, post, new_files, authorised=True)
