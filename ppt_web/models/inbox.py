"""Post registration: the inbox of scanned and digital mail, its checklist, and paper originals (docs/domain.md)."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .domain import Document, JournalPost, _enum
from .files import StoredFile
from .types import UTCDateTime
from .user import User


class InboxSource(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    SCAN = "scan"        # paper, scanned into the sync folder
    SVARINN = "svarinn"  # digital mail from KS SvarInn (or its folder stand-in)
    UPLOAD = "upload"    # uploaded by hand, e.g. mail that came by e-mail


class InboxStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    NEW = "new"
    IN_PROGRESS = "in_progress"
    CHECKED = "checked"
    TRANSFERRED = "transferred"
    SPLIT = "split"                      # divided into parts; the parts go on, this row is kept
    REJECTED = "rejected"                # by a user, with a reason
    SYSTEM_REJECTED = "system_rejected"  # by the intake: not a PDF, encrypted, duplicate, ...


OPEN_STATUSES = (InboxStatus.NEW, InboxStatus.IN_PROGRESS, InboxStatus.CHECKED)

# The four points of the scan checklist (postreg/service.py CHECK_LABELS), and which a person ticks per kind of mail:
# "all received documents are scanned" means nothing for mail that never was paper.
CHECK_POINTS = (1, 2, 3, 4)
CHECKS_FOR_SOURCE = {InboxSource.SCAN: (1, 2, 3, 4), InboxSource.SVARINN: (2, 3, 4), InboxSource.UPLOAD: (2, 3, 4)}


class InboxItem(Model):
    __tablename__ = "inbox_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[InboxSource] = mapped_column(_enum(InboxSource))
    status: Mapped[InboxStatus] = mapped_column(_enum(InboxStatus), default=InboxStatus.NEW)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filename: Mapped[str] = mapped_column(String(200))
    # What makes an intake exactly-once: "scan:<relative path>:<size>:<mtime ns>", "svarinn:<id>:<n>".
    source_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    svarinn_id: Mapped[str | None] = mapped_column(String(36), index=True)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("stored_file.sha256", ondelete="RESTRICT"), index=True)
    page_count: Mapped[int | None] = mapped_column(Integer)
    # Pre-filled registration data from digital mail: sender, title, dates, the sender's references.
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("inbox_item.id"), index=True)
    first_page: Mapped[int | None] = mapped_column(Integer)  # a split part: pages of the parent it holds
    last_page: Mapped[int | None] = mapped_column(Integer)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reject_code: Mapped[str | None] = mapped_column(String(30))
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    rejected_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quarantine_name: Mapped[str | None] = mapped_column(String(300))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("journal_post.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"), index=True)
    transferred_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its post was held back from access and deleted as misregistered before the leader released it:
    # filed again, it is held back again (postreg/transfer.py), so deleting cannot bypass the leader.
    hold_back_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    file: Mapped[StoredFile | None] = relationship()
    parent: Mapped[InboxItem | None] = relationship(remote_side=[id])
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    rejected_by: Mapped[User | None] = relationship(foreign_keys=[rejected_by_id])
    transferred_by: Mapped[User | None] = relationship(foreign_keys=[transferred_by_id])
    post: Mapped[JournalPost | None] = relationship()
    document: Mapped[Document | None] = relationship()
    checks: Mapped[list[ScanChecklist]] = relationship(back_populates="item", order_by="ScanChecklist.point",
                                                    cascade="all, delete-orphan")

    __table_args__ = (Index("ix_inbox_item_status_arrived", "status", "arrived_at"),
                      Index("ix_inbox_item_arrived", "arrived_at", "id"))  # the list's pages, newest first

    @property
    def check_points(self) -> tuple[int, ...]:
        return CHECKS_FOR_SOURCE[self.source]

    @property
    def checked_points(self) -> set[int]:
        return {c.point for c in self.checks}

    @property
    def all_checked(self) -> bool:
        return set(self.check_points) <= self.checked_points

    @property
    def sent_at(self) -> datetime | None:
        """When digital mail was sent, from its metadata (stored as ISO 8601 text)."""
        value = (self.meta or {}).get("sent_at")
        try:
            return datetime.fromisoformat(value) if value else None
        except (TypeError, ValueError):
            return None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class ScanChecklist(Model):
    """One ticked point of the quality checklist: who and when (kept with the document after transfer)."""

    __tablename__ = "inbox_check"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("inbox_item.id", ondelete="CASCADE"), index=True)
    point: Mapped[int] = mapped_column(Integer)
    checked_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[InboxItem] = relationship(back_populates="checks")
    checked_by: Mapped[User] = relationship()

    __table_args__ = (UniqueConstraint("item_id", "point"),)


class PaperOriginal(Model):
    """A scanned paper original in the archive room, kept until its destroy-by date (3 or 6 months)."""

    __tablename__ = "paper_original"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("inbox_item.id"), unique=True)
    # None while the mail is back in the inbox (its post deleted as misregistered): the record stays
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"), index=True)
    storage_place: Mapped[str] = mapped_column(String(200))
    scanned_on: Mapped[date] = mapped_column(Date)
    downtime_log: Mapped[bool] = mapped_column(Boolean, default=False)  # paper kept during downtime: longer
    destroy_by: Mapped[date] = mapped_column(Date, index=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroyed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[InboxItem] = relationship()
    document: Mapped[Document | None] = relationship()
    destroyed_by: Mapped[User | None] = relationship()
