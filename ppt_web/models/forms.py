"""Form tokens: a create form sent twice makes one object (docs/decisions.md, "One effect per action")."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import Model
from .types import UTCDateTime


class FormToken(Model):
    """The hidden token of one rendered create form, and what its first sending made."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # what the form makes: journal_post, case, client, organisation
    object_id: Mapped[int | None] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
