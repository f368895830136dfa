"""Clients, organisations, cases and journal posts (docs/domain.md)."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model, db
from .files import StoredFile
from .types import UTCDateTime
from .user import AccessGroup, User


def _enum(cls, length: int = 30):
    # Store the value ("expert_assessment"), not the member name, and no native DB enum type:
    # adding a value later is then a code change, not a schema migration on PostgreSQL.
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class OrgKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    SCHOOL = "school"
    KINDERGARTEN = "kindergarten"
    MUNICIPAL_UNIT = "municipal_unit"
    OTHER = "other"


class CaseKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    PERSON = "person"
    SYSTEM = "system"
    ADMINISTRATION = "administration"


class CaseCategory(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    EXPERT_ASSESSMENT = "expert_assessment"
    STATEMENT = "statement"
    FOLLOW_UP = "follow_up"
    REFERRAL = "referral"
    OTHER = "other"


class CaseStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    OPEN = "open"
    CLOSED = "closed"


class PostType(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    I = "I"  # noqa: E741  (Noark's own letters)
    U = "U"
    N = "N"
    X = "X"


class PostStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    FINALIZED = "finalized"
    DISPATCHED = "dispatched"


LOCKED_STATUSES = (PostStatus.FINALIZED, PostStatus.DISPATCHED)
OPEN_WORK_STATUSES = (PostStatus.DRAFT, PostStatus.AWAITING_APPROVAL, PostStatus.APPROVED)

DEFAULT_LEGAL_BASIS = "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1"

# Noark / Fiks Arkiv code list avskrivningsmaate.
WRITE_OFF_METHODS = ("BU", "BE", "TLF", "TE", "TO")


class Organisation(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_lower: Mapped[str] = mapped_column(String(200), index=True)
    org_number: Mapped[str | None] = mapped_column(String(9), unique=True)
    kind: Mapped[OrgKind] = mapped_column(_enum(OrgKind))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])


def client_name(given_name: str, family_name: str) -> str:
    """A client's name as every page writes it."""
    return f"{given_name} {family_name}"


def masked_national_id(national_id: str) -> str:
    """Birth date part only: enough to tell clients apart on a list."""
    return f"{national_id[:6]} *****"


class Client(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    national_id: Mapped[str] = mapped_column(String(11), unique=True)
    given_name: Mapped[str] = mapped_column(String(120))
    family_name: Mapped[str] = mapped_column(String(120))
    # Lower-case "given family" and "family": indexed prefixes for the live search.
    name_lower: Mapped[str] = mapped_column(String(250), index=True)
    family_lower: Mapped[str] = mapped_column(String(120), index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()
    handler: Mapped[User | None] = relationship()

    @property
    def name(self) -> str:
        return client_name(self.given_name, self.family_name)

    @property
    def masked_id(self) -> str:
        return masked_national_id(self.national_id)


case_cohandler = Table(
    "case_cohandler",
    db.metadata,
    Column("case_id", ForeignKey("case.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    # The cases a user co-handles, from the index alone (0021).
    Index("ix_case_cohandler_user_case", "user_id", "case_id"),
)


class Case(Model):
    __tablename__ = "case"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[CaseKind] = mapped_column(_enum(CaseKind))
    category: Mapped[CaseCategory | None] = mapped_column(_enum(CaseCategory))
    title: Mapped[str] = mapped_column(String(300))
    title_lower: Mapped[str] = mapped_column(String(300), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    handler_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    access_group_id: Mapped[int | None] = mapped_column(ForeignKey("access_group.id"))
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.OPEN)
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archive_ref: Mapped[str | None] = mapped_column(String(100))
    # What the archive's receipt said: its systemID and its case number (saksaar/sakssekvensnummer).
    archive_system_id: Mapped[str | None] = mapped_column(String(64))
    archive_year: Mapped[int | None] = mapped_column(Integer)
    archive_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    post_seq: Mapped[int] = mapped_column(Integer, default=0)

    client: Mapped[Client | None] = relationship()
    organisation: Mapped[Organisation | None] = relationship()
    handler: Mapped[User] = relationship(foreign_keys=[handler_id])
    access_group: Mapped[AccessGroup | None] = relationship()
    co_handlers: Mapped[list[User]] = relationship(secondary=case_cohandler, order_by="User.full_name")
    posts: Mapped[list[JournalPost]] = relationship(back_populates="case", order_by="JournalPost.seq")

    __table_args__ = (
        Index("ix_case_status_category", "status", "category"),
        # The start pages (0021): my open cases oldest first, my cases to close in the worklist's order,
        # and the open cases by handler, each walked in its order from its index.
        Index("ix_case_handler_opened", "handler_id", "status", "opened_on", "id"),
        Index("ix_case_handler_activity", "handler_id", "status", "last_activity_at", "id"),
        Index("ix_case_status_handler", "status", "handler_id", "opened_on", "id"),
        Index("ix_case_opened", "opened_on", "id"),  # search: newest cases first, a page at a time
    )

    @property
    def archive_number(self) -> str | None:
        """The case's number in the archive (saksaar/sakssekvensnummer), once its receipt came."""
        if self.archive_year is None or self.archive_seq is None:
            return None
        return f"{self.archive_year}/{self.archive_seq}"


class JournalPost(Model):
    __tablename__ = "journal_post"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    seq: Mapped[int] = mapped_column(Integer)
    post_type: Mapped[PostType] = mapped_column(_enum(PostType))
    title: Mapped[str] = mapped_column(String(300), default="")
    title_lower: Mapped[str] = mapped_column(String(300), default="", index=True)
    document_date: Mapped[date | None] = mapped_column(Date, index=True)
    received_on: Mapped[date | None] = mapped_column(Date)
    sent_on: Mapped[date | None] = mapped_column(Date)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    registered_after_downtime: Mapped[bool] = mapped_column(Boolean, default=False)
    # Post registration chose "hold back from access": it waits, unfinalized, for the leader.
    held_back: Mapped[bool] = mapped_column(Boolean, default=False)
    # The leader's decision on a held-back post (cases/hold_back.py): None while it waits, "released"
    # (it may be finalized and archived as any other) or "kept" (held back, with the reason).
    hold_decision: Mapped[str | None] = mapped_column(String(10))
    hold_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    hold_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    hold_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Approval: the named approver while it waits; who approved, once approved.
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    approval_requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approval_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exempt: Mapped[bool] = mapped_column(Boolean, default=True)
    legal_basis: Mapped[str] = mapped_column(String(200), default=DEFAULT_LEGAL_BASIS)
    status: Mapped[PostStatus] = mapped_column(_enum(PostStatus), default=PostStatus.DRAFT)
    # Counted up by every change to what a draft shows (its letter's text, title, recipients, documents)
    # and by every action on it (signing, sending to approval, finalizing), each on the count it read:
    # of a change and an action at once, the one that comes second is refused (posts.decide's seen).
    content_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Set by a metadata correction in its transaction (docs/decisions.md, "Immutability of finalized posts").
    correction_id: Mapped[int | None] = mapped_column(ForeignKey("metadata_correction.id", use_alter=True))
    written_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    write_off_method: Mapped[str | None] = mapped_column(String(5))
    written_off_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    write_off_reply_id: Mapped[int | None] = mapped_column(ForeignKey("journal_post.id"))
    # What the archive's receipt said: systemID, journalaar, journalsekvensnummer, journalpostnummer.
    archive_system_id: Mapped[str | None] = mapped_column(String(64))
    archive_year: Mapped[int | None] = mapped_column(Integer)
    archive_journal_seq: Mapped[int | None] = mapped_column(Integer)
    archive_post_number: Mapped[int | None] = mapped_column(Integer)
    # The day the letter left us and how ("svarut", "paper"): the archive's journalstatus E and sendtDato.
    expedited_on: Mapped[date | None] = mapped_column(Date)
    expedition: Mapped[str | None] = mapped_column(String(10))

    case: Mapped[Case] = relationship(back_populates="posts")
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    finalized_by: Mapped[User | None] = relationship(foreign_keys=[finalized_by_id])
    written_off_by: Mapped[User | None] = relationship(foreign_keys=[written_off_by_id])
    write_off_reply: Mapped[JournalPost | None] = relationship(remote_side=[id], foreign_keys=[write_off_reply_id])
    approver: Mapped[User | None] = relationship(foreign_keys=[approver_id])
    approval_requested_by: Mapped[User | None] = relationship(foreign_keys=[approval_requested_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    hold_decided_by: Mapped[User | None] = relationship(foreign_keys=[hold_decided_by_id])
    events: Mapped[list[PostEvent]] = relationship(back_populates="post", order_by="PostEvent.id",
                                                   cascade="all, delete-orphan")
    correspondents: Mapped[list[Correspondent]] = relationship(
        back_populates="post", order_by="Correspondent.id", cascade="all, delete-orphan")
    documents: Mapped[list[Document]] = relationship(
        back_populates="post", order_by="Document.position", cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        Index("ix_journal_post_case_date", "case_id", "document_date"),
        # Search walks this, newest posts first, when a word is common. PostgreSQL reads a plain
        # index backwards as DESC NULLS FIRST, so there its order is spelt out; SQLite sorts NULL
        # lowest, which is that order already (and has no NULLS LAST in CREATE INDEX). Alembic's
        # autogenerate reflects the PostgreSQL one as expressions and proposes to recreate it: drop
        # that from generated migrations (0007 made it).
        Index("ix_journal_post_date_id", "document_date", "id",
              postgresql_ops={"document_date": "DESC NULLS LAST", "id": "DESC"}),
        # The restanseliste and the start page's count of it: the posts not written off with their case and
        # the dates they are ordered by, from the index alone (0020; before, every such post was read).
        # SQLite's indexes hold the row id anyway; PostgreSQL's needs it included.
        Index("ix_journal_post_outstanding", "post_type", "written_off_at", "case_id", "document_date",
              "received_on", "registered_at", postgresql_include=["id"]),
        Index("ix_journal_post_status", "status"),
        Index("ix_journal_post_held_back", "held_back", "hold_decision"),
        # Statistics: a period's posts by registration month and type, from the index alone (0018).
        Index("ix_journal_post_registered", "registered_at", "post_type", "id"),
        # The start pages: has this user written a draft (0019).
        Index("ix_journal_post_created_by", "created_by_id", "status"),
        # The start pages (0021): the drafts oldest first; whether a case has a finished assessment or
        # unfinished work, without reading each of its posts.
        Index("ix_journal_post_status_registered", "status", "registered_at", "id"),
        Index("ix_journal_post_case_type_status", "case_id", "post_type", "status"),
        # The start page's restanser with a document date (nearly all), in the restanseliste's order, with
        # their case (0021).
        Index("ix_journal_post_outstanding_dated", "post_type", "written_off_at", "document_date", "registered_at",
              "id", "case_id"),
    )

    @property
    def number(self) -> str:
        return f"{self.case.number}-{self.seq}"

    @property
    def archive_number(self) -> str | None:
        """The post's number in the archive: case number and journalpostnummer ("2026/1234-5"); the
        journal year and sequence number while the case's own number is not known."""
        if self.archive_post_number is not None and self.case.archive_number:
            return f"{self.case.archive_number}-{self.archive_post_number}"
        if self.archive_year is not None and self.archive_journal_seq is not None:
            return f"{self.archive_year}/{self.archive_journal_seq}"
        return None

    @property
    def locked(self) -> bool:
        return self.status in LOCKED_STATUSES

    @property
    def main_document(self) -> Document | None:
        return next((d for d in self.documents if d.role == "main"), None)

    @property
    def date_in_or_out(self) -> date | None:
        return self.received_on if self.post_type == PostType.I else self.sent_on


class PostEvent(Model):
    """A step in a post's life beyond registration: approval, signing, dispatch (who, when, comment)."""

    __tablename__ = "post_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    kind: Mapped[str] = mapped_column(String(30))
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    post: Mapped[JournalPost] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    to_user: Mapped[User | None] = relationship(foreign_keys=[to_user_id])

    # The start page: the drafts returned to me (0021).
    __table_args__ = (Index("ix_post_event_to_user", "to_user_id", "kind"),)


class PostSignature(Model):
    """An electronic signature put on a post's main document (the signed file replaced the unsigned one)."""

    __tablename__ = "post_signature"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id", ondelete="CASCADE"), index=True)
    unsigned_sha256: Mapped[str] = mapped_column(ForeignKey("stored_file.sha256"))
    signed_sha256: Mapped[str] = mapped_column(ForeignKey("stored_file.sha256"))
    signed_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    certificate_subject: Mapped[str] = mapped_column(String(400), default="")

    signed_by: Mapped[User] = relationship()


class Correspondent(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # sender | recipient
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")  # street lines, one per line
    postal_code: Mapped[str] = mapped_column(String(10), default="", server_default="")
    city: Mapped[str] = mapped_column(String(100), default="", server_default="")
    country: Mapped[str] = mapped_column(String(2), default="NO", server_default="NO")
    # The korrespondansepartID the archive got with the post; NULL on rows older than migration 0012.
    archive_party_id: Mapped[str | None] = mapped_column(String(36))
    national_id: Mapped[str | None] = mapped_column(String(11))
    org_number: Mapped[str | None] = mapped_column(String(9))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))

    post: Mapped[JournalPost] = relationship(back_populates="correspondents")
    organisation: Mapped[Organisation | None] = relationship()


class Document(Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(12))  # main | attachment
    position: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(ForeignKey("stored_file.sha256", ondelete="RESTRICT"), index=True)

    post: Mapped[JournalPost] = relationship(back_populates="documents")
    file: Mapped[StoredFile] = relationship()


class MetadataCorrection(Model):
    """A correction of a finalized post's metadata: who, when, why, old and new values."""

    __tablename__ = "metadata_correction"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[dict] = mapped_column(JSON)
    after: Mapped[dict] = mapped_column(JSON)
    # 1 only inside the transaction that applies it; the triggers let changes through then.
    applying: Mapped[bool] = mapped_column(Boolean, default=True)

    actor: Mapped[User] = relationship()
