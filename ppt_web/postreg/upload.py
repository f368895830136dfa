"""Mail registered by hand: an uploaded PDF into the inbox; a demo letter into the SvarInn stand-in."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import current_app

from .. import form_tokens
from ..activity import service as activity
from ..auth.access import require
from ..clock import utcnow
from ..errors import Invalid
from ..extensions import db
from ..files.storage import store_upload
from ..inbound.folder import write_example
from ..models import InboxItem, InboxSource, InboxStatus, User
from .intake import duplicate_of, reason_text


def receive_upload(actor: User, stream, filename: str, token: str | None = None) -> InboxItem:
    """Mail that came another way (e-mail): the user sees a refusal at once, nothing is kept then.
    The form's token makes one item however often the form is sent (form_tokens.once)."""
    require(actor, "distribute_mail")
    data = stream.read(int(current_app.config["PPT_MAX_UPLOAD_BYTES"]) + 1)

    def make() -> InboxItem:
        duplicate = duplicate_of(hashlib.sha256(data).hexdigest()) if data else None
        if duplicate is not None:
            raise Invalid(f"{reason_text('duplicate')} ({duplicate})", field="file")
        stored = store_upload(io.BytesIO(data), filename or "dokument.pdf", previews=True)
        item = InboxItem(source=InboxSource.UPLOAD, status=InboxStatus.NEW, filename=stored.filename,
                         sha256=stored.sha256, page_count=stored.page_count, arrived_at=utcnow(),
                         meta={"uploaded_by": actor.username})
        db.session.add(item)
        db.session.flush()
        activity.record("inbox_received", actor=actor, object_type="inbox_item", object_id=item.id,
                        after={"source": "upload", "file": item.filename, "pages": item.page_count})
        return item

    try:
        item = form_tokens.once(actor, token, "inbox_item", make)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return item


def write_demo_mail(pdf: bytes, title: str, sender: str, org_number: str | None = None) -> str:
    """Drop one digital letter into the folder stand-in for SvarInn (demo and tests)."""
    return write_example(Path(current_app.config["PPT_SVARINN_DIR"]), pdf, title=title, sender=sender,
                         org_number=org_number)
