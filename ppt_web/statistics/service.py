"""The statistics page's service: every figure for the filters in the page's order, one figure by its key
(a CSV computes only that one), the cases behind a quarter's waiting time, and the export's log row."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from sqlalchemy import select

from ..activity import service as activity
from ..auth.access import require
from ..errors import NotFound
from ..extensions import db
from ..models import AccessGroup, Case, User
from ..transaction import transaction
from . import casework, records
from .figures import Figure, Filters

Maker = Callable[[User, Filters], Figure]


def _team(make: Callable[[Filters], Figure]) -> Maker:
    return lambda actor, f: make(f)


# key -> the function that computes that figure alone, in the page's order: cases first, then documents,
# approvals, the archive and dispatches.
REGISTRY: dict[str, Maker] = {
    "referrals-month": _team(casework.referrals_by_month),
    "referrals-school": _team(casework.referrals_by_school),
    "waiting": casework.waiting_time,
    "workload": _team(casework.workload),
    "cases-month": _team(casework.cases_by_month),
    "documents-type": _team(records.documents_by_type),
    "documents-channel": _team(records.documents_by_channel),
    "approvals-waiting": _team(records.approvals_waiting),
    "approvals-month": _team(records.approvals_by_month),
    "archive-status": _team(records.archive_status),
    "archive-errors": _team(records.archive_errors_by_week),
    "archive-messages": _team(records.archive_top_errors),
    "archive-latency": _team(records.archive_latency),
    "dispatches": _team(records.dispatches_by_status),
}

# The page's sections: (section key, the figure keys in it).
SECTIONS = (
    ("cases", ("referrals-month", "referrals-school", "waiting", "workload", "cases-month")),
    ("documents", ("documents-type", "documents-channel")),
    ("approvals", ("approvals-waiting", "approvals-month")),
    ("archive", ("archive-status", "archive-errors", "archive-messages", "archive-latency")),
    ("dispatches", ("dispatches",)),
)

QUARTER = re.compile(r"(\d{4})-Q([1-4])")


def figures(actor: User, f: Filters) -> list[Figure]:
    """All figures, cases first, then documents, approvals, the archive and dispatches."""
    require(actor, "statistics")
    return [make(actor, f) for make in REGISTRY.values()]


def figure(actor: User, key: str, f: Filters) -> Figure | None:
    """One figure by its key (the CSV), computed alone; None when no figure has that key."""
    require(actor, "statistics")
    make = REGISTRY.get(key)
    return make(actor, f) if make else None


def known(key: str) -> bool:
    """Whether a figure has this key (a CSV's name)."""
    return key in REGISTRY


def teams() -> list[tuple[int, str]]:
    """The access groups the page's team filter offers: (id, name), by name."""
    return [(row.id, row.name) for row in db.session.execute(select(AccessGroup.id, AccessGroup.name)
                                                              .order_by(AccessGroup.name))]


def waiting_cases(actor: User, quarter: str, f: Filters) -> list[tuple[Case, date, date, int]]:
    """The cases behind a quarter's "longer than the threshold", only those the actor may see. A quarter
    that is not 'YYYY-Qn' (or a year out of range) is NotFound."""
    require(actor, "statistics")
    found = QUARTER.fullmatch(quarter or "")
    if not found or not 1900 <= int(found.group(1)) <= 2999:
        raise NotFound()
    return casework.waiting_cases(actor, quarter, f)


def record_export(actor: User, key: str, f: Filters) -> None:
    """The activity log's row for a CSV taken out: which figure, which period and team (no person in it)."""
    require(actor, "statistics")
    with transaction():
        team = f"; team {f.team_id}" if f.team_id is not None else ""
        activity.record("statistics_exported", actor=actor,
                        detail=f"{key}: {f.period.first.isoformat()}–{f.period.last.isoformat()}{team}")
