"""The service's clock: stored times are UTC; dates a person sees or a rule counts are Oslo dates.

One definition of each, so a date never comes from the host's time zone (servers run on UTC: for
an hour or two each night, the host's date is not Oslo's)."""
from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def utcnow() -> datetime:
    """Now, aware, in UTC: what the database stores."""
    return datetime.now(UTC)


def today() -> date:
    """Today in Oslo: dates on posts, cases and archive jobs are Norwegian dates."""
    return datetime.now(OSLO).date()
