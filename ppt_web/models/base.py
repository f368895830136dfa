"""Shared column helpers."""
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Aware UTC now; every stored time is UTC (SPEC §1)."""
    return datetime.now(timezone.utc)
