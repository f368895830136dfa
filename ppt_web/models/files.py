"""Content-addressed files: each distinct byte string is stored once, named by its SHA-256."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import Model
from .types import UTCDateTime


class StoredFile(Model):
    __tablename__ = "stored_file"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(80), default="application/pdf")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
