"""The figures about cases: referrals, waiting time, workload, closed cases (docs/statistics.md)."""
from __future__ import annotations

from datetime import date

from ..models import Case, User
from .figures import Figure, Filters


def referrals_by_month(f: Filters) -> Figure:
    """key "referrals-month": new person cases (Case.kind person, opened_on in the period) per month
    (a row per month of the period, 0 where none), a count column per category (CaseCategory, plus
    "none" for a case without one) and a total. Chart: stacked, x "month", series the categories."""
    raise NotImplementedError


def referrals_by_school(f: Filters) -> Figure:
    """key "referrals-school": the same cases per school or kindergarten (the case's organisation, else
    the client's), most first, the 15 largest and one row "Others"; a row "No school or kindergarten".
    Columns: organisation (label), count. Chart: bar."""
    raise NotImplementedError


def waiting_time(actor: User, f: Filters) -> Figure:
    """key "waiting": per quarter of the period, the cases whose expert assessment or statement was
    finished in that quarter: how many, the median, 75th and 90th percentile of days from referral
    received to finished, and how many waited longer than f.threshold_days. Chart: grouped, series
    p50/p75/p90 in days, reference = the threshold. links: the quarter's row -> the list of its cases
    that waited longer (statistics.waiting_cases), for those whose scope shows cases."""
    raise NotImplementedError


def waiting_cases(actor: User, quarter: str, f: Filters) -> list[tuple[Case, date, date, int]]:
    """The cases behind a quarter's "longer than the threshold": (case, referred on, finished on, days),
    longest first, only cases the actor may see (scope.case_clause)."""
    raise NotImplementedError


def workload(f: Filters) -> Figure:
    """key "workload": open cases now per handler (the team's handlers, or all), by age band
    (opened_on: under 3 months, 3-6, 6-12, over 12) and the oldest's age in days. The handler column
    is an anonymous label ("A", "B", ...); the name is a screen_only column. Chart: stacked by band."""
    raise NotImplementedError


def cases_by_month(f: Filters) -> Figure:
    """key "cases-month": per month of the period, cases opened and cases closed (closed_on in it).
    Chart: grouped."""
    raise NotImplementedError


FIGURES = (referrals_by_month, referrals_by_school, waiting_time, workload, cases_by_month)
