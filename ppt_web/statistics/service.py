"""The statistics page's service: every figure for the filters, in the page's order."""
from __future__ import annotations

from ..auth.access import require
from ..models import User
from . import casework, records
from .figures import Figure, Filters


def figures(actor: User, f: Filters) -> list[Figure]:
    """All figures, cases first, then documents, approvals, the archive and dispatches."""
    require(actor, "statistics")
    return [casework.referrals_by_month(f), casework.referrals_by_school(f), casework.waiting_time(actor, f),
            casework.workload(f), casework.cases_by_month(f), *(make(f) for make in records.FIGURES)]


def figure(actor: User, key: str, f: Filters) -> Figure | None:
    """One figure by its key (the CSV), or None when no figure has that key."""
    return next((found for found in figures(actor, f) if found.key == key), None)
