"""Electronic dispatch of outgoing posts through SvarUt: one row per recipient, sent at most once."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .domain import JournalPost, _enum, masked_national_id
from .types import UTCDateTime
from .user import User


class DispatchStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    PENDING = "pending"      # not yet answered, or the answer was lost (then looked up before any resend)
    SENT = "sent"            # SvarUt has it (MOTTATT, AKSEPTERT, SENDT_*)
    CONFIRMED = "confirmed"  # delivered (LEST, LEVERT_*, PRINTET)
    FAILED = "failed"        # refused (4xx, AVVIST, IKKE_LEVERT, ...): visible and retryable
    MANUAL = "manual"        # MANUELT_HANDTERT: handled by hand at SvarUt; an end state, never resent
    REPLACED = "replaced"    # a failed one that a retry replaced with a new shipment


class Dispatch(Model):
    __tablename__ = "dispatch"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id"), index=True)
    # SET NULL: a metadata correction replaces the post's correspondents; the row keeps its own copy.
    correspondent_id: Mapped[int | None] = mapped_column(ForeignKey("correspondent.id", ondelete="SET NULL"))
    # Our UUID, sent as eksternReferanse: the key SvarUt is asked about after an unknown outcome.
    external_ref: Mapped[str] = mapped_column(String(36), unique=True)
    recipient_kind: Mapped[str] = mapped_column(String(12))  # person | organisation
    recipient_name: Mapped[str] = mapped_column(String(200))
    # A guardian's national id or an organisation number: never in a URL, a log line or a message.
    recipient_id: Mapped[str] = mapped_column(String(11))
    address_line1: Mapped[str] = mapped_column(String(300))
    address_line2: Mapped[str] = mapped_column(String(300), default="", server_default="")
    postal_code: Mapped[str] = mapped_column(String(10))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2), default="NO", server_default="NO")  # ISO 3166 alpha-2
    status: Mapped[DispatchStatus] = mapped_column(_enum(DispatchStatus), default=DispatchStatus.PENDING)
    raw_status: Mapped[str] = mapped_column(String(40), default="")
    forsendelse_id: Mapped[str | None] = mapped_column(String(64))
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch.id"))

    post: Mapped[JournalPost] = relationship()
    created_by: Mapped[User] = relationship()

    __table_args__ = (Index("ix_dispatch_status_next", "status", "next_attempt_at"),)

    @property
    def masked_recipient_id(self) -> str:
        return self.recipient_id if self.recipient_kind == "organisation" else masked_national_id(self.recipient_id)
