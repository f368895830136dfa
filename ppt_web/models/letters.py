"""Letter templates (with their kept versions) and letters written in the app (docs/letters.md).

A template's row holds what applies now; every save adds a DocumentTemplateVersion holding all of it,
and a letter names the version it was made from, so editing a template never changes a letter.
A Letter is the text of one journal post (U or N) written in the app's editor; its PDF is the post's
main document. Once the post is finalized the letter row can never change (database triggers, as
for documents). Template versions are never changed or deleted either.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .domain import DEFAULT_LEGAL_BASIS, JournalPost, PostType, _enum
from .types import UTCDateTime
from .user import User


class TemplateKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member), which forms read
    LETTER = "letter"
    EXPERT_ASSESSMENT = "expert_assessment"
    STATEMENT = "statement"
    INVITATION = "invitation"
    NOTE = "note"


# The post types a template may make: an outgoing letter or an internal note.
TEMPLATE_POST_TYPES = (PostType.U, PostType.N)


class DocumentTemplate(Model):
    __tablename__ = "document_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TemplateKind] = mapped_column(_enum(TemplateKind))
    post_type: Mapped[PostType] = mapped_column(_enum(PostType))
    default_title: Mapped[str] = mapped_column(String(300), default="")
    legal_basis: Mapped[str] = mapped_column(String(200), default=DEFAULT_LEGAL_BASIS)
    # The template may merge the client's full national id (only for users who may see it).
    show_national_id: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)  # the number of its latest version
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Set on the templates the app ships ("invitation", ...): they are added once, never again.
    shipped_key: Mapped[str | None] = mapped_column(String(60), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    versions: Mapped[list[DocumentTemplateVersion]] = relationship(
        back_populates="template", order_by="DocumentTemplateVersion.number")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])

    @property
    def retired(self) -> bool:
        return self.retired_at is not None


class DocumentTemplateVersion(Model):
    """A template as it was saved once: never changed, never deleted."""

    __tablename__ = "document_template_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("document_template.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TemplateKind] = mapped_column(_enum(TemplateKind))
    post_type: Mapped[PostType] = mapped_column(_enum(PostType))
    default_title: Mapped[str] = mapped_column(String(300), default="")
    legal_basis: Mapped[str] = mapped_column(String(200), default=DEFAULT_LEGAL_BASIS)
    show_national_id: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    template: Mapped[DocumentTemplate] = relationship(back_populates="versions")
    created_by: Mapped[User | None] = relationship()

    __table_args__ = (UniqueConstraint("template_id", "number"),)


class Letter(Model):
    """The text of a journal post written in the app, and which rendering of it is the main document."""

    __tablename__ = "letter"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("journal_post.id", ondelete="CASCADE"), unique=True)
    template_version_id: Mapped[int | None] = mapped_column(ForeignKey("document_template_version.id"))
    body: Mapped[str] = mapped_column(Text, default="")  # sanitized HTML (letters/sanitize.py)
    # Goes up by one with every save: a save names the version it edited, and one made on an older
    # version is refused, so two writers never overwrite each other silently.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # The letter version whose PDF is the post's main document now, that PDF's digest, and a digest of
    # everything the PDF shows (text, title, recipients, letterhead, ...): a change of any makes it old.
    rendered_version: Mapped[int | None] = mapped_column(Integer)
    rendered_sha256: Mapped[str | None] = mapped_column(String(64))
    rendered_inputs: Mapped[str | None] = mapped_column(String(64))

    post: Mapped[JournalPost] = relationship()
    template_version: Mapped[DocumentTemplateVersion | None] = relationship()
    updated_by: Mapped[User | None] = relationship()
