"""Splitting a scanned batch into documents by page ranges: each part becomes an inbox item of its own."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask_babel import lazy_gettext as _l

from ..errors import Conflict, Invalid
from ..extensions import db
from ..files import preview
from ..files.pdfcheck import split_pdf
from ..files.storage import UploadRejected, checked_path, store_upload
from ..models import (
    InboxItem,
    InboxStatus,
    User,
)
from ..models.inbox import OPEN_STATUSES
from ..transaction import transaction
from . import service
from .inbox import log_item as _log
from .service import get_item

RANGE = re.compile(r"^\s*(\d{1,4})\s*(?:-\s*(\d{1,4})\s*)?$")


def parse_ranges(text: str, pages: int) -> list[tuple[int, int]]:
    """ "1-2, 3, 4-6" -> [(1, 2), (3, 3), (4, 6)]; every page exactly once, in order, so nothing is lost."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    if len(parts) < 2:
        raise Invalid(_l("Give at least two page ranges, for example 1-2, 3-5."), field="ranges")
    ranges, expected = [], 1
    for part in parts:
        match = RANGE.match(part)
        if not match:
            raise Invalid(_l("Write page ranges like 1-2, 3, 4-6."), field="ranges")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first != expected or last < first or last > pages:
            raise Invalid(_l("The ranges must follow each other and cover pages 1 to %(pages)s exactly once.",
                             pages=pages), field="ranges")
        ranges.append((first, last))
        expected = last + 1
    if expected != pages + 1:
        raise Invalid(_l("The ranges must follow each other and cover pages 1 to %(pages)s exactly once.",
                         pages=pages), field="ranges")
    return ranges


def split(actor: User, item_id: int, ranges_text: str) -> list[InboxItem]:
    """Divide a scanned batch into documents by page ranges; each part is an inbox item of its own."""
    item = get_item(actor, item_id)
    if not item.is_open or item.sha256 is None:
        raise Conflict(_l("The item is not waiting any more."))
    ranges = parse_ranges(ranges_text, item.page_count or 0)
    scratch = preview.scratch()
    parts: list[InboxItem] = []
    try:
        with transaction() as new_hashes:
            _split_into(actor, item, ranges, scratch, parts, new_hashes)
    except UploadRejected:
        raise Invalid(_l("The page ranges could not be cut from this file."), field="ranges") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return parts


def _split_into(actor: User, item: InboxItem, ranges: list[tuple[int, int]], scratch: Path, parts: list[InboxItem],
                new_hashes: list[str]) -> None:
    """split's work in its transaction: the parts are cut in the checking child and stored as new items."""
    # Claim first: a colleague's transfer or split of the same item now waits or is refused.
    service.transition(item, InboxStatus.SPLIT, OPEN_STATUSES)
    assert item.sha256 is not None  # split refuses an item without a file
    files = split_pdf(checked_path(item.sha256, item.filename), ranges, scratch)
    stem = item.filename[:-4] if item.filename.lower().endswith(".pdf") else item.filename
    for (first, last), part_file in zip(ranges, files, strict=True):
        with part_file.open("rb") as stream:
            stored = store_upload(stream, f"{stem} ({first}-{last}).pdf", previews=True)
        new_hashes.append(stored.sha256)
        if stored.page_count != last - first + 1:
            raise Invalid(_l("The page ranges could not be cut from this file."), field="ranges")
        part = InboxItem(source=item.source, status=InboxStatus.NEW, filename=stored.filename,
                         sha256=stored.sha256, page_count=stored.page_count, arrived_at=item.arrived_at,
                         meta=dict(item.meta or {}), parent=item, first_page=first, last_page=last,
                         svarinn_id=item.svarinn_id,
                         # mail back from a held-back post waits for the leader in every part
                         hold_back_required=item.hold_back_required)
        db.session.add(part)
        parts.append(part)
    db.session.flush()
    _log("inbox_split", actor, item, ranges=[list(r) for r in ranges], parts=[p.id for p in parts])
