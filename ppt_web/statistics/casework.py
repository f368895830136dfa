"""The figures about cases: referrals, waiting time, workload, closed cases (docs/statistics.md)."""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from flask import has_request_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import aliased
from werkzeug.routing import BuildError

from .. import clock
from ..auth import scope
from ..cases.service import assessment_post_clause
from ..clock import OSLO
from ..extensions import db
from ..labels import CATEGORY_LABELS
from ..models import (
    Case,
    CaseCategory,
    CaseKind,
    CaseStatus,
    Client,
    JournalPost,
    Organisation,
    OrgKind,
    PostType,
    User,
)
from .figures import (
    Chart,
    Column,
    Figure,
    Filters,
    Period,
    day_month_key,
    percentile,
    quarter_days,
    quarter_of,
    team_clause,
)

ASSESSED = (CaseCategory.EXPERT_ASSESSMENT, CaseCategory.STATEMENT)  # the categories the waiting time is about
TOP_SCHOOLS = 15
SCHOOL_KINDS = (OrgKind.SCHOOL, OrgKind.KINDERGARTEN)  # what counts as a school or kindergarten
# Workload age bands: (column key, label, the youngest and the oldest age in days, both included).
BANDS = (("under_3", _l("Under 3 months"), 0, 90), ("3_6", _l("3–6 months"), 91, 182),
         ("6_12", _l("6–12 months"), 183, 365), ("over_12", _l("Over 12 months"), 366, None))


def _referrals(f: Filters) -> tuple:
    """The conditions on Case of the period's referrals: person cases opened in the period, of the team."""
    return (Case.kind == CaseKind.PERSON, Case.opened_on >= f.period.first, Case.opened_on <= f.period.last,
            team_clause(f.team_id))


def _category_key(value) -> str:
    return value.value if isinstance(value, CaseCategory) else (value or "none")


def referrals_by_month(f: Filters) -> Figure:
    """key "referrals-month": new person cases (Case.kind person, opened_on in the period) per month
    (a row per month of the period, 0 where none), a count column per category (CaseCategory, plus
    "none" for a case without one) and a total. Chart: stacked, x "month", series the categories."""
    month = day_month_key(Case.opened_on)
    counts: dict[tuple[str, str], int] = {}
    for key, category, n in db.session.execute(
            select(month, Case.category, func.count()).where(*_referrals(f)).group_by(month, Case.category)):
        counts[key, _category_key(category)] = n
    categories = [c.value for c in CaseCategory] + ["none"]
    rows = []
    for key in f.period.months():
        cells = [counts.get((key, c), 0) for c in categories]
        rows.append((key, *cells, sum(cells)))
    columns = [Column("month", _l("Month"), "label"),
               *(Column(c, CATEGORY_LABELS.get(c, _l("No category"))) for c in categories),
               Column("total", _l("Total"), derived=True)]
    return Figure("referrals-month", _("Referrals per month"), columns, rows,
                  Chart("stacked", "month", tuple(categories), unit=_("cases")),
                  note=_("New person cases, by the month they were opened and their category."))


def referrals_by_school(f: Filters) -> Figure:
    """key "referrals-school": the same cases per school or kindergarten (the case's organisation, else
    the client's), most first, the 15 largest and one row "Others"; a row "No school or kindergarten" for
    the cases without an organisation or whose organisation is of another kind (a municipal unit, or
    "other", which may be a private practice named after a person). Columns: organisation (label), count.
    Chart: bar, without "Others" (chart_exclude). guard_rows: the rows add up to the referrals per month."""
    org = func.coalesce(Case.organisation_id, Client.organisation_id)
    query = (select(org.label("org"), Organisation.name, Organisation.kind, func.count().label("n"))
             .select_from(Case).outerjoin(Client, Client.id == Case.client_id)
             .outerjoin(Organisation, Organisation.id == org)
             .where(*_referrals(f)).group_by(org, Organisation.name, Organisation.kind))
    named, without = [], 0
    for org_id, name, kind, n in db.session.execute(query):
        if org_id is None or kind not in SCHOOL_KINDS:
            without += n
        else:
            named.append((name, n))
    named.sort(key=lambda row: (-row[1], row[0].lower()))
    rows: list[tuple] = list(named[:TOP_SCHOOLS])
    exclude: frozenset[int] = frozenset()
    if len(named) > TOP_SCHOOLS:
        exclude = frozenset({len(rows)})  # a remainder that would dwarf every school's bar: the table keeps it
        rows.append((_("Others"), sum(n for _name, n in named[TOP_SCHOOLS:])))
    rows.append((_("No school or kindergarten"), without))
    return Figure("referrals-school", _("Referrals by school or kindergarten"),
                  [Column("organisation", _l("School or kindergarten"), "label"), Column("count", _l("Referrals"))],
                  rows, Chart("bar", "organisation", ("count",), unit=_("cases")),
                  note=_("New person cases of the period by the case's school or kindergarten (else the "
                         "child's), the %(n)d largest first.", n=TOP_SCHOOLS),
                  chart_exclude=exclude, guard_rows=True)


def _received_on(case_id) -> ColumnElement:
    """The day a case's referral was received: the earlier of its opened_on and its first incoming post's
    received_on (a correlated scalar, per case)."""
    incoming = aliased(JournalPost)
    return (select(func.min(incoming.received_on))
            .where(incoming.case_id == case_id, incoming.post_type == PostType.I).scalar_subquery())


def _referred(opened_on: date, first_in: date | None) -> date:
    return min(opened_on, first_in) if first_in is not None else opened_on


def _oslo_day(moment: datetime) -> date:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(OSLO).date()


def _finished(team_id: int | None, first: date, last: date, extra: tuple = ()) -> list[tuple[int, date, date]]:
    """(case id, referral received, finished on) of the expert assessment and statement cases whose first
    finished assessment post was finalized on an Oslo day first..last: one row per case.

    Only cases opened by `last` and open now or closed on `first` or later can have one: a case is closed
    only when all its posts are finalized, so its assessment is finalized by its (last) closing day. That
    leaves out the old closed cases before their posts are read."""
    start, end = Period(first, last).utc_bounds()
    # Per case, its posts through the case's index: cheaper than reading every outgoing post of the service.
    first_finished = (select(func.min(JournalPost.finalized_at))
                      .where(JournalPost.case_id == Case.id, assessment_post_clause()).scalar_subquery())
    candidates = (select(Case.id.label("id"), Case.opened_on.label("opened_on"), first_finished.label("at"))
                  .where(Case.kind == CaseKind.PERSON, Case.category.in_(ASSESSED), team_clause(team_id),
                         Case.opened_on <= last, or_(Case.status == CaseStatus.OPEN, Case.closed_on >= first),
                         *extra).cte("candidates").prefix_with("MATERIALIZED"))
    query = (select(candidates.c.id, candidates.c.opened_on, _received_on(candidates.c.id), candidates.c.at)
             .where(candidates.c.at >= start, candidates.c.at < end))
    return [(case_id, _referred(opened_on, first_in), _oslo_day(at))
            for case_id, opened_on, first_in, at in db.session.execute(query)]


def _still_waiting(f: Filters) -> list[date]:
    """The referral days of the period's open expert assessment and statement referrals that have no
    finished assessment yet."""
    done = select(JournalPost.id).where(JournalPost.case_id == Case.id, assessment_post_clause()).exists()
    query = (select(Case.opened_on, _received_on(Case.id))
             .where(*_referrals(f), Case.category.in_(ASSESSED), Case.status == CaseStatus.OPEN, ~done))
    return [_referred(opened_on, first_in) for opened_on, first_in in db.session.execute(query)]


def _may_list_cases(actor: User) -> bool:
    return actor.can("search_own") or actor.can("search_all")


def waiting_time(actor: User, f: Filters) -> Figure:
    """key "waiting": per quarter of the period, the cases whose expert assessment or statement was
    finished in that quarter: how many, the median, 75th and 90th percentile of days from referral
    received to finished, and how many waited longer than f.threshold_days. Chart: grouped, series
    p50/p75/p90 in days, reference = the threshold. links: the quarter's row -> the list of its cases
    that waited longer (statistics.waiting_cases), for those whose scope shows cases."""
    quarters = f.period.quarters()
    days: dict[str, list[int]] = defaultdict(list)
    for _case_id, referred, finished in _finished(f.team_id, quarter_days(quarters[0])[0],
                                                  quarter_days(quarters[-1])[1]):
        days[quarter_of(finished.isoformat()[:7])].append((finished - referred).days)
    rows, links = [], {}
    for index, quarter in enumerate(quarters):
        values = days.get(quarter, [])
        over = sum(1 for d in values if d > f.threshold_days)
        rows.append((quarter, len(values), percentile(values, 0.5), percentile(values, 0.75),
                     percentile(values, 0.9), over))
        if over and _may_list_cases(actor) and has_request_context():
            try:
                links[index] = url_for("statistics.waiting_cases", quarter=quarter, team=f.team_id,
                                       threshold=f.threshold_days)
            except BuildError:  # no statistics pages in this app: the figure without its links
                pass
    today = clock.today()
    waiting = _still_waiting(f)
    waiting_over = sum(1 for referred in waiting if (today - referred).days > f.threshold_days)
    columns = [Column("quarter", _l("Quarter"), "label"), Column("finished", _l("Finished")),
               Column("p50", _l("Median (days)"), "days"), Column("p75", _l("75th percentile (days)"), "days"),
               Column("p90", _l("90th percentile (days)"), "days"),
               Column("over", lazy_ngettext("Longer than %(days)s day", "Longer than %(days)s days",
                                            f.threshold_days, days=f.threshold_days))]
    note = _("Days from the referral was received to the expert assessment or statement was finished, by the "
             "quarter it was finished in; the threshold is %(days)d days. The period's referrals for an expert "
             "assessment or statement still waiting now: %(waiting)d; longer than the threshold: %(over)d.",
             days=f.threshold_days, waiting=len(waiting), over=waiting_over)
    return Figure("waiting", _("Waiting time for an expert assessment or statement"), columns, rows,
                  Chart("grouped", "quarter", ("p50", "p75", "p90"), unit=_("days"),
                        reference=float(f.threshold_days),
                        reference_label=_("Threshold: %(days)d days", days=f.threshold_days)),
                  note=note, links=links)


def waiting_cases(actor: User, quarter: str, f: Filters) -> list[tuple[Case, date, date, int]]:
    """The cases behind a quarter's "longer than the threshold": (case, referred on, finished on, days),
    longest first, only cases the actor may see (scope.case_clause)."""
    first, last = quarter_days(quarter)
    found = [(case_id, referred, finished, (finished - referred).days)
             for case_id, referred, finished in _finished(f.team_id, first, last, (scope.case_clause(actor),))]
    found = [row for row in found if row[3] > f.threshold_days]
    cases = {c.id: c for c in db.session.scalars(select(Case).where(Case.id.in_([row[0] for row in found])))}
    found.sort(key=lambda row: (-row[3], row[0]))
    return [(cases[case_id], referred, finished, waited) for case_id, referred, finished, waited in found]


def _label(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA", as spreadsheets name their columns."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def workload(f: Filters) -> Figure:
    """key "workload": open cases now per handler (the team's handlers, or all), by age band
    (opened_on: under 3 months, 3-6, 6-12, over 12) and the oldest's age in days. The handler column
    is an anonymous label ("A", "B", ...); the name is a screen_only column. Chart: stacked by band."""
    today = clock.today()
    bands = []
    for _key, _label_text, youngest, oldest in BANDS:
        conditions = [Case.opened_on <= today - timedelta(days=youngest)] if youngest else []
        if oldest is not None:
            conditions.append(Case.opened_on >= today - timedelta(days=oldest))
        bands.append(func.sum(case((and_(*conditions), 1), else_=0)))
    total, first_opened = func.count(), func.min(Case.opened_on)
    query = (select(User.full_name, *bands, total, first_opened).join(User, User.id == Case.handler_id)
             .where(Case.status == CaseStatus.OPEN, team_clause(f.team_id))
             .group_by(User.id, User.full_name)
             .order_by(total.desc(), first_opened, User.id))
    rows = []
    for index, (name, *counts, n, opened) in enumerate(db.session.execute(query)):
        rows.append((_label(index), name, *(int(c or 0) for c in counts), n, float((today - opened).days)))
    columns = [Column("handler", _l("Handler"), "label"), Column("name", _l("Name"), "text", screen_only=True),
               *(Column(key, text) for key, text, _young, _old in BANDS),
               Column("total", _l("Open cases"), derived=True),
               Column("oldest", _l("Oldest (days)"), "days")]
    return Figure("workload", _("Open cases per handler now, by age"), columns, rows,
                  Chart("stacked", "handler", tuple(key for key, *_rest in BANDS), unit=_("cases")),
                  note=_("Open cases of every kind now, per responsible handler, by days since they were "
                         "opened. Handlers are shown as letters, most cases first."))


def cases_by_month(f: Filters) -> Figure:
    """key "cases-month": per month of the period, cases opened and cases closed (closed_on in it).
    Chart: grouped."""
    opened_month, closed_month = day_month_key(Case.opened_on), day_month_key(Case.closed_on)
    opened: dict[str, int] = dict(db.session.execute(
        select(opened_month, func.count()).where(Case.opened_on >= f.period.first, Case.opened_on <= f.period.last,
                                                 team_clause(f.team_id)).group_by(opened_month)).all())
    closed: dict[str, int] = dict(db.session.execute(
        select(closed_month, func.count()).where(Case.status == CaseStatus.CLOSED, Case.closed_on >= f.period.first,
                                                 Case.closed_on <= f.period.last, team_clause(f.team_id))
        .group_by(closed_month)).all())
    rows = [(key, opened.get(key, 0), closed.get(key, 0)) for key in f.period.months()]
    return Figure("cases-month", _("Cases opened and closed per month"),
                  [Column("month", _l("Month"), "label"), Column("opened", _l("Opened")),
                   Column("closed", _l("Closed"))],
                  rows, Chart("grouped", "month", ("opened", "closed"), unit=_("cases")),
                  note=_("Cases of every kind opened in the month, and cases closed in it (a case closed "
                         "again after a reopening counts once, in the month of its last closing)."))


FIGURES = (referrals_by_month, referrals_by_school, waiting_time, workload, cases_by_month)
