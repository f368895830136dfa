"""The archive job: the outbox row that mirrors one archive-relevant change (docs/decisions.md, "The archive job")."""
from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .domain import Case, Client, JournalPost, _enum
from .types import UTCDateTime

# Fiks Arkiv V1 message types (meldingstyper) the app sends.
OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
OPPDATER = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.oppdater"
AVSKRIVNING = "no.ks.fiks.arkiv.v1.arkivering.avskrivning.opprett"


class JobStatus(enum.StrEnum):
    """Where the job is in the worker: Ny, Under arbeid, Utført."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class ArchiveStatus(enum.StrEnum):
    """What the archive made of it: Ny (no answer yet), Arkivert, Feil."""

    NEW = "new"
    ARCHIVED = "archived"
    FAILED = "failed"


class ArchiveJob(Model):
    __tablename__ = "archive_job"
    id: Mapped[int] = mapped_column(primary_key=True)
    # The X-Klientmelding-Id: fixed at creation, the same on every retry.
    message_id: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    # What happened in the case system: case_created, case_closed, case_reopened, post_finalized,
    # metadata_corrected, post_written_off, case_corrected. The Fiks Arkiv message type follows from it.
    event: Mapped[str] = mapped_column(String(30))
    operation: Mapped[str] = mapped_column(String(80))
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("journal_post.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    correction_id: Mapped[int | None] = mapped_column(ForeignKey("metadata_correction.id"))
    job_status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, 12), default=JobStatus.NEW)
    archive_status: Mapped[ArchiveStatus] = mapped_column(_enum(ArchiveStatus, 12), default=ArchiveStatus.NEW)
    message: Mapped[str] = mapped_column(Text, default="")  # the text in the default language (Nynorsk)
    # What the message says, as a code of archive/job_messages.py and its values: shown in the reader's language.
    message_code: Mapped[str | None] = mapped_column(String(40))
    message_params: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    # When a worker was last told about this job: the sweep re-tells only after a while.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    after_job_id: Mapped[int | None] = mapped_column(ForeignKey("archive_job.id"), index=True)
    archive_ref: Mapped[dict | None] = mapped_column(JSON)
    # Over Fiks IO: the message id Fiks IO gave the last send of this job (a reply's svar-til names it),
    # and when the archive said "mottatt" for it.
    fiksio_message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # The Fiks IO message ids of the job's earlier sends, oldest first, space separated: the claim of a new
    # send moves fiksio_message_id here, so a late error about an earlier send is known for what it is.
    fiksio_earlier_ids: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the archive needs, as it was when the change happened (archive/snapshot.py); None on jobs
    # older than migration 0012, which are built from the current state.
    snapshot: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalized_on: Mapped[date] = mapped_column(Date)  # the Date column of the log
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    deleted_reason: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship()
    post: Mapped[JournalPost | None] = relationship()
    client: Mapped[Client | None] = relationship()
    after_job: Mapped[ArchiveJob | None] = relationship(remote_side=[id])

    __table_args__ = (
        Index("ix_archive_job_due", "job_status", "next_attempt_at"),
        Index("ix_archive_job_failed", "archive_status", "id"),
        # Only the few soft-deleted jobs (migration 0006 says why not (deleted_at, id) for all).
        Index("ix_archive_job_deleted", "id", sqlite_where=text("deleted_at IS NOT NULL"),
              postgresql_where=text("deleted_at IS NOT NULL")),
        Index("ix_archive_job_new", "id", sqlite_where=text("job_status = 'new' AND deleted_at IS NULL"),
              postgresql_where=text("job_status = 'new' AND deleted_at IS NULL")),
        Index("ix_archive_job_finalized_on", "finalized_on"),
    )
