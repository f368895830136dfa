"""The case figures of the statistics page (docs/statistics.md) against numbers worked out by hand on a
small fixed world of 2025: referrals per month and per school, the waiting time to the finished expert
assessment, the workload now, cases opened and closed, and the cases behind the worst waiting times."""
from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest
from flask_babel import force_locale
from sqlalchemy import delete, insert

from ppt_web import clock
from ppt_web.cases import service as cases
from ppt_web.extensions import db
from ppt_web.models import (
    AccessGroup,
    Case,
    CaseCategory,
    CaseKind,
    CaseStatus,
    Client,
    DocumentTemplate,
    DocumentTemplateVersion,
    JournalPost,
    Letter,
    Organisation,
    OrgKind,
    PostStatus,
    PostType,
    TemplateKind,
)
from ppt_web.models.user import group_member
from ppt_web.statistics import casework
from ppt_web.statistics.figures import Filters, Period

from . import builders
from .conftest import user

YEAR = Filters(Period(date(2025, 1, 1), date(2025, 12, 31), "year"))
TODAY = date(2026, 1, 15)  # "now" for the workload and the referrals still waiting
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def english(ctx):
    """The labels and notes these tests read are the English ones, whatever the translations say."""
    with force_locale("en"):
        yield


@pytest.fixture
def today(monkeypatch):
    monkeypatch.setattr(clock, "today", lambda: TODAY)


def _at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def _case(handler: str, opened: str, category: str | None = "expert_assessment", kind: str = "person",
          closed: str | None = None, status: str | None = None, client=None, org=None) -> Case:
    made = Case(number=f"2025/{next(_numbers):05d}", kind=CaseKind(kind),
                category=CaseCategory(category) if category else None, title="Sak", title_lower="sak",
                handler_id=user(handler).id, opened_on=date.fromisoformat(opened),
                closed_on=date.fromisoformat(closed) if closed else None,
                status=CaseStatus(status or ("closed" if closed else "open")),
                client_id=client.id if client else None, organisation_id=org.id if org else None)
    db.session.add(made)
    db.session.flush()
    return made


def _post(case: Case, post_type: str = "U", status: str = "finalized", finalized: datetime | None = None,
          approved: bool = False, received: str | None = None, template: DocumentTemplateVersion | None = None):
    """A post made as a draft (with its letter, if from a template), then given its status: the database
    keeps a finalized post's letter from changing."""
    seq = len(db.session.scalars(db.select(JournalPost.id).where(JournalPost.case_id == case.id)).all()) + 1
    post = JournalPost(case_id=case.id, seq=seq, post_type=PostType(post_type), title="Brev", title_lower="brev",
                       created_by_id=case.handler_id,
                       received_on=date.fromisoformat(received) if received else None)
    db.session.add(post)
    db.session.flush()
    if template is not None:
        db.session.add(Letter(post_id=post.id, template_version_id=template.id))
        db.session.flush()
    approver = user("leiar").id if approved else None  # looked up first: its query flushes what is pending
    post.status, post.finalized_at, post.approved_by_id = PostStatus(status), finalized, approver
    db.session.flush()
    return post


def _template(kind: TemplateKind) -> DocumentTemplateVersion:
    template = DocumentTemplate(name=f"Mal {kind.value}", kind=kind, post_type=PostType.U)
    db.session.add(template)
    db.session.flush()
    version = DocumentTemplateVersion(template_id=template.id, number=1, name=template.name, kind=kind,
                                      post_type=PostType.U)
    db.session.add(version)
    db.session.flush()
    return version


def _client(org: Organisation | None) -> Client:
    n = next(_numbers)
    made = Client(national_id=builders.valid_national_id(n + 400), given_name=f"Ola{n}", family_name="Nordmann",
                  name_lower=f"ola{n} nordmann", family_lower="nordmann", birth_date=date(2015, 1, 1),
                  organisation_id=org.id if org else None)
    db.session.add(made)
    db.session.flush()
    return made


@pytest.fixture
def world(ctx, today):
    """radgjevar1 (Team barnehage) and radgjevar2 (Team skule), their cases of 2025 and a few older ones.
    Days waited are worked out in the comments: referral received -> finished (Oslo day)."""
    hasund = Organisation(name="Hasund barnehage", name_lower="hasund barnehage", kind=OrgKind.KINDERGARTEN)
    ulstein = Organisation(name="Ulstein skule", name_lower="ulstein skule", kind=OrgKind.SCHOOL)
    db.session.add_all([hasund, ulstein])
    db.session.flush()
    child = _client(hasund)
    assessment, statement, invitation = (_template(k) for k in (
        TemplateKind.EXPERT_ASSESSMENT, TemplateKind.STATEMENT, TemplateKind.INVITATION))
    c = {}
    # A: received 03.01 (before it was opened), assessment approved by the leader 14.02: 42 days, Q1.
    c["A"] = _case("radgjevar1", "2025-01-10", client=child, closed="2025-02-20")
    _post(c["A"], "I", received="2025-01-03", finalized=_at("2025-01-03"))
    _post(c["A"], finalized=_at("2025-02-14"), approved=True)
    # B: an invitation letter (approved, but not the assessment) in February; the statement letter is
    # finalized at 00:30 Oslo time on 01.04 (22:30 UTC on 31.03): finished in Q2, 71 days.
    c["B"] = _case("radgjevar2", "2025-01-20", "statement", client=child, org=ulstein)
    _post(c["B"], finalized=_at("2025-02-01"), approved=True, template=invitation)
    _post(c["B"], finalized=_at("2025-03-31", 22, 30), template=statement)
    # C: reopened and closed again (last closed 20.11); first assessment 05.05: 91 days, Q2; a second one later.
    c["C"] = _case("radgjevar1", "2025-02-03", closed="2025-11-20")
    _post(c["C"], finalized=_at("2025-05-05"), template=assessment)
    _post(c["C"], status="dispatched", finalized=_at("2025-06-10"), approved=True)
    c["system"] = _case("radgjevar1", "2025-02-10", None, kind="system")
    # D: no finished assessment yet (a draft): still waiting, 306 days now.
    c["D"] = _case("radgjevar2", "2025-03-15", client=child)
    _post(c["D"], status="draft")
    # E: reopened and still open; finished 30.06: exactly 90 days (not longer than 90), Q2.
    c["E"] = _case("radgjevar1", "2025-04-01")
    _post(c["E"], finalized=_at("2025-06-30"), approved=True)
    c["G"] = _case("radgjevar1", "2025-05-20", "follow_up", org=hasund, closed="2025-05-28")
    c["H"] = _case("radgjevar2", "2025-06-02", None)
    # "12": a plain outgoing letter, finalized but neither a template's assessment nor approved: still waiting.
    c["12"] = _case("radgjevar2", "2025-07-01")
    _post(c["12"], finalized=_at("2025-08-01"))
    # I: received 01.08, finished 01.12: 122 days, Q4.
    c["I"] = _case("radgjevar2", "2025-08-15", "statement", client=child, org=ulstein, closed="2025-12-10")
    _post(c["I"], "I", received="2025-08-01", finalized=_at("2025-08-02"))
    _post(c["I"], finalized=_at("2025-12-01"), template=statement)
    c["F"] = _case("radgjevar2", "2025-09-01", "referral")
    c["J"] = _case("radgjevar1", "2025-10-17")  # no assessment yet: 90 days now, not longer than 90
    c["L"] = _case("radgjevar2", "2025-12-20", "other")
    # Older cases: #10 finished in Q1 2025 (75 days); #11 first finished in 2024 (its 2025 post does not count).
    c["10"] = _case("radgjevar1", "2024-11-01", closed="2025-01-20")
    _post(c["10"], finalized=_at("2025-01-15"), approved=True)
    c["11"] = _case("radgjevar1", "2024-05-01", closed="2024-09-10")
    _post(c["11"], finalized=_at("2024-09-01"), approved=True)
    _post(c["11"], finalized=_at("2025-03-01"), approved=True)
    c["K"] = _case("radgjevar1", "2024-10-01", "follow_up")
    db.session.commit()
    return c


def team(name: str) -> int:
    return db.session.scalar(db.select(AccessGroup.id).where(AccessGroup.name == name))


def rows(figure, *keys: str) -> list[tuple]:
    at = [figure.column(k) for k in keys]
    return [tuple(row[i] for i in at) for row in figure.rows]


def months(*counts: int) -> list[tuple]:
    return [(f"2025-{m:02d}", n) for m, n in zip(range(1, 13), counts, strict=True)]


def test_referrals_per_month_by_category_with_a_row_for_every_month(world):
    figure = casework.referrals_by_month(YEAR)
    assert [c.key for c in figure.columns] == ["month", "expert_assessment", "statement", "follow_up", "referral",
                                               "other", "none", "total"]
    assert figure.rows == [
        ("2025-01", 1, 1, 0, 0, 0, 0, 2), ("2025-02", 1, 0, 0, 0, 0, 0, 1), ("2025-03", 1, 0, 0, 0, 0, 0, 1),
        ("2025-04", 1, 0, 0, 0, 0, 0, 1), ("2025-05", 0, 0, 1, 0, 0, 0, 1), ("2025-06", 0, 0, 0, 0, 0, 1, 1),
        ("2025-07", 1, 0, 0, 0, 0, 0, 1), ("2025-08", 0, 1, 0, 0, 0, 0, 1), ("2025-09", 0, 0, 0, 1, 0, 0, 1),
        ("2025-10", 1, 0, 0, 0, 0, 0, 1), ("2025-11", 0, 0, 0, 0, 0, 0, 0), ("2025-12", 0, 0, 0, 0, 1, 0, 1)]
    assert figure.chart.kind == "stacked" and "total" not in figure.chart.series
    # A quarter: its three months only; the system case of February is no referral.
    q1 = casework.referrals_by_month(Filters(Period(date(2025, 1, 1), date(2025, 3, 31), "quarter")))
    assert rows(q1, "month", "total") == [("2025-01", 2), ("2025-02", 1), ("2025-03", 1)]


def test_referrals_by_school_the_cases_organisation_before_the_childs(world, monkeypatch):
    figure = casework.referrals_by_school(YEAR)
    assert figure.rows == [("Hasund barnehage", 3), ("Ulstein skule", 2), ("No school or kindergarten", 7)]
    assert figure.guard_rows and figure.chart_exclude == frozenset()
    monkeypatch.setattr(casework, "TOP_SCHOOLS", 1)
    figure = casework.referrals_by_school(YEAR)
    assert figure.rows == [("Hasund barnehage", 3), ("Others", 2), ("No school or kindergarten", 7)]
    # "Others" stays in the table (and the CSV) but not in the chart, where it would dwarf every school.
    assert figure.chart_exclude == frozenset({1}) and figure.guard_rows


def test_only_schools_and_kindergartens_count_as_one(world):
    """A case whose organisation (the case's, else the child's) is a municipal unit or of the kind "other"
    (a private practice may be named after a person) counts under "No school or kindergarten"."""
    practice = Organisation(name="Kari Nordmann logopedteneste", name_lower="kari nordmann logopedteneste",
                            kind=OrgKind.OTHER)
    health = Organisation(name="Helsestasjonen", name_lower="helsestasjonen", kind=OrgKind.MUNICIPAL_UNIT)
    school = db.session.scalar(db.select(Organisation).where(Organisation.name == "Ulstein skule"))
    db.session.add_all([practice, health])
    db.session.flush()
    _case("radgjevar1", "2025-03-01", org=practice)
    _case("radgjevar1", "2025-03-02", client=_client(health))
    _case("radgjevar1", "2025-03-03", client=_client(school), org=health)  # the case's organisation first
    db.session.commit()
    figure = casework.referrals_by_school(YEAR)
    assert figure.rows == [("Hasund barnehage", 3), ("Ulstein skule", 2), ("No school or kindergarten", 10)]
    assert sum(r[1] for r in figure.rows) == sum(r[-1] for r in casework.referrals_by_month(YEAR).rows)


def test_waiting_time_per_quarter_percentiles_of_even_and_odd_counts(world, app):
    with app.test_request_context():
        figure = casework.waiting_time(user("leiar"), YEAR)
    # Q1: 42 and 75 days (even: the median is halfway); Q2: 71, 90, 91 (odd); Q3 none; Q4: 122.
    assert figure.rows == [("2025-Q1", 2, 58.5, 66.75, pytest.approx(71.7), 0),
                           ("2025-Q2", 3, 90.0, 90.5, pytest.approx(90.8), 1),
                           ("2025-Q3", 0, None, None, None, 0),
                           ("2025-Q4", 1, 122.0, 122.0, 122.0, 1)]
    assert figure.chart.reference == 90.0 and figure.chart.series == ("p50", "p75", "p90")
    assert str(figure.columns[figure.column("over")].label) == "Longer than 90 days"
    # Still waiting: D (306 days) and "12" (198) longer than 90, J (90) not; E is finished, C is closed.
    assert "still waiting now: 3; longer than the threshold: 2." in figure.note
    assert set(figure.links) == {1, 3}
    assert figure.links[1].startswith("/statistics/waiting/2025-Q2?") and "threshold=90" in figure.links[1]
    assert "team=" not in figure.links[1]


def test_the_threshold_moves_the_counts_and_the_reference(world):
    figure = casework.waiting_time(user("leiar"), Filters(YEAR.period, threshold_days=60))
    assert rows(figure, "quarter", "over") == [("2025-Q1", 1), ("2025-Q2", 3), ("2025-Q3", 0), ("2025-Q4", 1)]
    assert figure.chart.reference == 60.0 and "still waiting now: 3; longer than the threshold: 3." in figure.note
    assert figure.links == {}  # no request: no page to link to
    assert str(figure.columns[figure.column("over")].label) == "Longer than 60 days"
    one_day = casework.waiting_time(user("leiar"), Filters(YEAR.period, threshold_days=1))
    assert str(one_day.columns[one_day.column("over")].label) == "Longer than 1 day"


def test_a_month_period_counts_the_waiting_of_its_whole_quarter(world):
    figure = casework.waiting_time(user("leiar"), Filters(Period(date(2025, 5, 1), date(2025, 5, 31), "month")))
    assert rows(figure, "quarter", "finished") == [("2025-Q2", 3)]


def test_the_drill_down_lists_the_longest_first_and_only_what_the_user_may_see(world):
    f = Filters(YEAR.period, threshold_days=60)
    listed = casework.waiting_cases(user("leiar"), "2025-Q2", f)
    assert [(c.id, referred, finished, days) for c, referred, finished, days in listed] == [
        (world["C"].id, date(2025, 2, 3), date(2025, 5, 5), 91), (world["E"].id, date(2025, 4, 1), date(2025, 6, 30), 90),
        (world["B"].id, date(2025, 1, 20), date(2025, 4, 1), 71)]
    assert [row[0].id for row in casework.waiting_cases(user("radgjevar1"), "2025-Q2", f)] == [world["C"].id,
                                                                                               world["E"].id]
    assert [row[0].id for row in casework.waiting_cases(user("radgjevar2"), "2025-Q2", f)] == [world["B"].id]
    assert casework.waiting_cases(user("leiar"), "2025-Q2", Filters(YEAR.period, team_id=team("Team skule"),
                                                                    threshold_days=60))[0][0].id == world["B"].id
    assert casework.waiting_cases(user("leiar"), "2025-Q3", f) == []


def test_workload_now_per_handler_by_age_anonymous_most_first(world):
    figure = casework.workload(YEAR)
    # radgjevar2: L (26 days), F (136), H (227), "12" (198), D (306), B (360, finished but open); radgjevar1:
    # J (90: still under 3 months), E (289), the system case (339), K (471). Nobody else has an open case.
    assert figure.rows == [("A", "Randi Rådgjevar", 1, 1, 4, 0, 6, 360.0),
                           ("B", "Rune Rådgjevar", 1, 0, 2, 1, 4, 471.0)]
    name = figure.columns[figure.column("name")]
    assert name.screen_only and figure.chart.x == "handler" and "name" not in figure.chart.series
    assert casework.workload(Filters(YEAR.period, team_id=team("Team barnehage"))).rows == [
        ("A", "Rune Rådgjevar", 1, 0, 2, 1, 4, 471.0)]


def test_cases_opened_and_closed_per_month_a_reopened_case_closed_once(world):
    figure = casework.cases_by_month(YEAR)
    # Opened: every kind (February has C and the system case). Closed: #10, A, G, C (last closed in
    # November after its reopening), I; E was reopened and is open: not closed.
    assert rows(figure, "month", "opened") == months(2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1)
    assert rows(figure, "month", "closed") == months(1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1)


def test_a_handler_moving_team_takes_their_cases_along(world):
    barnehage, skule = team("Team barnehage"), team("Team skule")
    def totals(team_id):
        f = Filters(YEAR.period, team_id=team_id)
        return (sum(r[-1] for r in casework.referrals_by_month(f).rows),
                rows(casework.waiting_time(user("leiar"), f), "quarter", "finished"),
                sum(r[1] + r[2] for r in casework.cases_by_month(f).rows), len(casework.workload(f).rows))
    q = ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")
    assert totals(barnehage) == (5, list(zip(q, (2, 2, 0, 0), strict=True)), 6 + 4, 1)
    assert totals(skule) == (7, list(zip(q, (0, 1, 0, 1), strict=True)), 7 + 1, 1)
    radgjevar2 = user("radgjevar2").id
    db.session.execute(delete(group_member).where(group_member.c.user_id == radgjevar2))
    db.session.execute(insert(group_member).values(group_id=barnehage, user_id=radgjevar2))
    db.session.commit()
    assert totals(barnehage) == (12, list(zip(q, (2, 3, 0, 1), strict=True)), 13 + 5, 2)
    assert totals(skule) == (0, list(zip(q, (0, 0, 0, 0), strict=True)), 0, 0)


def test_the_worklist_and_the_statistics_agree_on_a_finished_assessment(ctx, app):
    """Through the app's own services: an expert assessment approved by the leader finishes the case today,
    in the statistics and on the closing worklist; an invitation letter does not."""
    done = builders.case(category="expert_assessment", title="Ferdig")
    builders.finalized_post(done, post_type="U", correspondent="Føresette", title="Sakkunnig vurdering")
    waiting = builders.case(category="expert_assessment", title="Ventar")
    invitation = builders.post(waiting, post_type="U", correspondent="Føresette", title="Innkalling")
    db.session.add(Letter(post_id=invitation.id, template_version_id=_template(TemplateKind.INVITATION).id))
    db.session.commit()
    assert builders.finalize(invitation, "radgjevar1").approved_by_id  # approved by the leader too
    now = clock.today()
    f = Filters(Period(now, now, "month"))
    with app.test_request_context():
        figure = casework.waiting_time(user("leiar"), f)
    assert [r[1] for r in figure.rows] == [1] and figure.rows[0][2] == 0.0
    assert "still waiting now: 1; longer than the threshold: 0." in figure.note
    assert [c.title for c in cases.worklist(user("radgjevar1"))["finished"]] == ["Ferdig"]


def test_no_name_or_national_id_in_any_chart_or_exported_column(world):
    names = {c.name for c in db.session.scalars(db.select(Client))} | {c.national_id for c in
                                                                       db.session.scalars(db.select(Client))}
    handlers = {"Rune Rådgjevar", "Randi Rådgjevar"}
    for make in casework.FIGURES:
        figure = make(user("leiar"), YEAR) if make is casework.waiting_time else make(YEAR)
        exported = [i for i, c in enumerate(figure.columns) if not c.screen_only]
        cells = {str(row[i]) for row in figure.rows for i in exported} | {figure.note, figure.title}
        assert not any(secret in cell for cell in cells for secret in names | handlers), figure.key


def test_totals_are_marked_derived_so_a_csv_cannot_give_a_small_count_away(world):
    """A total beside a hidden small count would give it away by subtraction: the totals say they are made
    from the row's counts; the counts themselves are not."""
    derived = {}
    for make in casework.FIGURES:
        figure = make(user("leiar"), YEAR) if make is casework.waiting_time else make(YEAR)
        derived[figure.key] = [c.key for c in figure.columns if c.derived]
    assert derived == {"referrals-month": ["total"], "referrals-school": [], "waiting": [], "workload": ["total"],
                       "cases-month": []}


def test_handler_letters_go_on_after_z_as_in_a_spreadsheet():
    assert [casework._label(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
