"""The figures about documents, approvals, the archive and dispatches (docs/statistics.md)."""
from __future__ import annotations

from .figures import Figure, Filters


def documents_by_type(f: Filters) -> Figure:
    """key "documents-type": posts registered per month (registered_at, Oslo month) by post type I, U,
    N, X, and a total. Chart: stacked."""
    raise NotImplementedError


def documents_by_channel(f: Filters) -> Figure:
    """key "documents-channel": the same posts per month by how they came: scan, SvarInn, upload to the
    inbox (InboxItem.source of the item filed as the post), or made in the app (no inbox item: a letter
    or a file added on the case). Chart: stacked."""
    raise NotImplementedError


def approvals_waiting(f: Filters) -> Figure:
    """key "approvals-waiting": posts waiting for approval now, by how long they have waited (under 3
    days, 3-7, 7-14, over 14) and the oldest. Chart: bar."""
    raise NotImplementedError


def approvals_by_month(f: Filters) -> Figure:
    """key "approvals-month": per month of the period, decisions (approved, returned), the returned share
    in percent and the median days from sent for approval to the decision. Chart: grouped."""
    raise NotImplementedError


def archive_status(f: Filters) -> Figure:
    """key "archive-status": archive jobs of the period (finalized_on) by status: Ny, Under arbeid,
    Arkivert, Feil, deleted. scope "service". Chart: bar."""
    raise NotImplementedError


def archive_errors_by_week(f: Filters) -> Figure:
    """key "archive-errors": per ISO week of the period, jobs, failed jobs and the error rate in
    percent. scope "service". Chart: line of the rate."""
    raise NotImplementedError


def archive_top_errors(f: Filters) -> Figure:
    """key "archive-messages": the ten commonest messages of failed jobs of the period, in the reader's
    language, without the values that could name a person. scope "service". Chart: bar."""
    raise NotImplementedError


def archive_latency(f: Filters) -> Figure:
    """key "archive-latency": per month, posts archived and the minutes from finalized to Arkivert,
    p50 and p95. scope "service". Chart: line."""
    raise NotImplementedError


def dispatches_by_status(f: Filters) -> Figure:
    """key "dispatches": SvarUt dispatches made in the period by status. scope "service". Chart: bar."""
    raise NotImplementedError


FIGURES = (documents_by_type, documents_by_channel, approvals_waiting, approvals_by_month, archive_status,
           archive_errors_by_week, archive_top_errors, archive_latency, dispatches_by_status)
