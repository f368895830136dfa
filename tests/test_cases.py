"""Cases: registration rules, handlers, co-handlers, closing rules and the worklist."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clients import organisations
from ppt_web.clients import service as clients
from ppt_web.clock import utcnow
from ppt_web.errors import Conflict, Forbidden, Invalid, NotFound
from ppt_web.extensions import db
from ppt_web.models import Case, CaseStatus, Client

from . import builders
from .conftest import activity_rows, user


def test_duplicate_national_id_is_refused(ctx):
    first = builders.client(n=7)
    with pytest.raises(Conflict):
        clients.register_client(user("konsulent"), clients.ClientData(
            national_id=first.national_id, given_name="Dup", family_name="Dup"))
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 1


def test_a_handler_who_types_the_number_of_a_client_outside_their_cases_is_refused_and_logged(ctx):
    """The refusal says the number is a client's (the uniqueness cannot hide it); for a client outside the
    handler's cases it is logged as a look-up of that client, as a 404 is, without the number."""
    theirs = builders.client("radgjevar1", n=17)
    for typist, logged in (("konsulent", False), ("radgjevar2", True)):
        with pytest.raises(Conflict):
            clients.register_client(user(typist), clients.ClientData(
                national_id=theirs.national_id, given_name="Dup", family_name="Dup"))
        db.session.rollback()
        refusals = [(r.actor_id, r.object_type, r.object_id, r.outcome) for r in activity_rows("not_found")]
        assert refusals == ([(user("radgjevar2").id, "client", str(theirs.id), "denied")] if logged else [])
    assert theirs.national_id not in repr([(r.before, r.after, r.detail) for r in activity_rows()])
    assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 1


def test_client_log_rows_never_hold_the_national_id(ctx):
    client = builders.client(n=8)
    clients.reveal_national_id(user("konsulent"), client.id)
    for row in activity_rows():
        assert client.national_id not in repr((row.before, row.after, row.detail, row.object_id))
    assert activity_rows("national_id_shown")[-1].object_id == str(client.id)


def test_handler_registers_person_cases_for_themselves_only(ctx):
    client = builders.client("radgjevar1")
    own = cases.register_case(user("radgjevar1"), cases.CaseData(kind="person", title="Eiga", category="referral",
                                                                 client_id=client.id))
    assert own.handler.username == "radgjevar1" and own.number.endswith(f"/{own.id:05d}")
    with pytest.raises(Forbidden):
        cases.register_case(user("radgjevar1"), cases.CaseData(kind="administration", title="Adm"))
    with pytest.raises(Forbidden):
        cases.register_case(user("radgjevar1"), cases.CaseData(kind="person", title="Andre", category="referral",
                                                               client_id=client.id, handler_id=user("radgjevar2").id))


def test_case_kinds_need_their_subject(ctx):
    konsulent = user("konsulent")
    with pytest.raises(Invalid):
        cases.register_case(konsulent, cases.CaseData(kind="person", title="x", category="referral"))
    with pytest.raises(Invalid):
        cases.register_case(konsulent, cases.CaseData(kind="person", title="x", client_id=builders.client().id))
    with pytest.raises(Invalid):
        cases.register_case(konsulent, cases.CaseData(kind="system", title="x"))
    org = organisations.register_organisation(konsulent, name="Ulstein skule", org_number="", kind="school")
    system = cases.register_case(konsulent, cases.CaseData(kind="system", title="Skulemiljø", organisation_id=org.id))
    admin_case = cases.register_case(konsulent, cases.CaseData(kind="administration", title="Budsjett"))
    assert system.category is None and admin_case.client_id is None


def test_cohandlers_and_handler_changes_are_logged(ctx):
    case = builders.case("radgjevar1")
    with pytest.raises(NotFound):  # radgjevar2 cannot even see it
        cases.add_cohandler(user("radgjevar2"), case.id, user("radgjevar2").id)
    cases.add_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id)
    assert [u.username for u in db.session.get(Case, case.id).co_handlers] == ["radgjevar2"]
    with pytest.raises(Conflict):  # a co-handler does not add others
        cases.add_cohandler(user("radgjevar2"), case.id, user("sekretaer").id)
    with pytest.raises(Forbidden):
        cases.change_handler(user("radgjevar1"), case.id, user("radgjevar2").id)
    cases.change_handler(user("sekretaer"), case.id, user("radgjevar2").id)
    fresh = db.session.get(Case, case.id)
    assert fresh.handler.username == "radgjevar2" and fresh.co_handlers == []
    row = activity_rows("case_handler_changed")[-1]
    assert row.before["handler"] == "radgjevar1" and row.after["handler"] == "radgjevar2"


def test_close_refused_while_a_post_is_draft_or_awaiting_approval(ctx):
    case = builders.case()
    draft = builders.post(case, title="Utkast")
    with pytest.raises(Conflict) as caught:
        cases.close_case(user("radgjevar1"), case.id)
    assert "Utkast" in str(caught.value.message)
    db.session.rollback()
    db.session.execute(text("UPDATE journal_post SET status = 'awaiting_approval' WHERE id = :id"), {"id": draft.id})
    db.session.commit()
    with pytest.raises(Conflict):
        cases.close_case(user("radgjevar1"), case.id)
    db.session.rollback()
    db.session.execute(text("UPDATE journal_post SET status = 'draft' WHERE id = :id"), {"id": draft.id})
    db.session.commit()
    posts.finalize(user("radgjevar1"), draft.id)
    with pytest.raises(Conflict):  # now a finalized note for follow-up that is not written off
        cases.close_case(user("radgjevar1"), case.id)
    db.session.rollback()
    closed = cases.close_case(user("radgjevar1"), case.id, write_off_method="TE")
    assert closed.status == CaseStatus.CLOSED and closed.closed_on is not None
    with pytest.raises(Forbidden):
        cases.reopen_case(user("leiar"), case.id)
    reopened = cases.reopen_case(user("radgjevar1"), case.id)
    assert reopened.status == CaseStatus.OPEN and reopened.closed_on is None
    assert [r.action for r in activity_rows() if r.action in ("case_closed", "case_reopened")] == \
        ["case_closed", "case_reopened"]


def test_worklist_shows_finished_assessments_and_idle_follow_ups(ctx):
    finished = builders.case(category="expert_assessment", title="Ferdig")
    builders.finalized_post(finished, post_type="U", correspondent="Føresette", title="Sakkunnig vurdering")
    unfinished = builders.case(category="expert_assessment", title="Ikkje ferdig")
    builders.post(unfinished, post_type="U", correspondent="Føresette")
    idle = builders.case(category="follow_up", title="Gamal oppfølging")
    busy = builders.case(category="follow_up", title="Aktiv oppfølging")
    db.session.get(Case, idle.id).last_activity_at = utcnow() - timedelta(days=200)
    db.session.commit()
    lists = cases.worklist(user("radgjevar1"))
    assert [c.title for c in lists["finished"]] == ["Ferdig"]
    assert [c.title for c in lists["idle"]] == ["Gamal oppfølging"]
    assert busy.id not in [c.id for c in lists["idle"]]
    assert cases.worklist(user("radgjevar2")) == {"finished": [], "idle": []}


def test_organisations_validate_and_refuse_duplicates(ctx):
    from ppt_web.generate import org_number

    konsulent = user("konsulent")
    number = org_number(4242)
    school = organisations.register_organisation(konsulent, name="Hasund skule", org_number=number, kind="school")
    with pytest.raises(Conflict):
        organisations.register_organisation(konsulent, name="Kopi", org_number=number, kind="school")
    with pytest.raises(Invalid):
        organisations.register_organisation(konsulent, name="Feil", org_number="123456789", kind="school")
    with pytest.raises(Forbidden):
        organisations.register_organisation(user("radgjevar1"), name="Nei", org_number="", kind="other")
    db.session.rollback()
    unit = organisations.register_organisation(konsulent, name="Ulstein kommune", org_number="", kind="municipal_unit")
    organisations.update_organisation(konsulent, school.id, name="Hasund skule", org_number=number, kind="school",
                                parent_id=unit.id)
    with pytest.raises(Invalid):  # no cycles in the structure
        organisations.update_organisation(konsulent, unit.id, name="Ulstein kommune", org_number="", kind="municipal_unit",
                                    parent_id=school.id)


def test_a_second_co_handler_is_added_and_the_right_one_taken_off(ctx):
    """Users not signed in on this request compared equal (Flask-Login compares by the session's token,
    None for them all): adding a second co-handler did nothing, and taking one off took off the first."""
    case = builders.case("radgjevar1")
    cases.add_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id)
    cases.add_cohandler(user("radgjevar1"), case.id, user("konsulent").id)
    assert sorted(u.username for u in db.session.get(Case, case.id).co_handlers) == ["konsulent", "radgjevar2"]
    cases.remove_cohandler(user("radgjevar1"), case.id, user("konsulent").id)
    assert [u.username for u in db.session.get(Case, case.id).co_handlers] == ["radgjevar2"]
    cases.add_cohandler(user("radgjevar1"), case.id, user("konsulent").id)
    cases.change_handler(user("sekretaer"), case.id, user("konsulent").id)  # the new handler leaves the list
    fresh = db.session.get(Case, case.id)
    assert fresh.handler.username == "konsulent" and [u.username for u in fresh.co_handlers] == ["radgjevar2"]


@pytest.mark.parametrize("change", ["add", "remove", "handler"])
def test_a_handler_change_made_twice_at_once_changes_it_once_without_an_error(app, ctx, monkeypatch, change):
    """A double click or a second tab: the second request finds the first's change made meanwhile (a 500 before:
    the co-handler row there already, or gone)."""
    from .helpers import elsewhere

    case = builders.case("radgjevar1")
    if change != "add":
        cases.add_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id)
    act = {"add": lambda: cases.add_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id),
           "remove": lambda: cases.remove_cohandler(user("radgjevar1"), case.id, user("radgjevar2").id),
           "handler": lambda: cases.change_handler(user("sekretaer"), case.id, user("radgjevar2").id)}[change]
    real, calls = cases.snapshot, []

    def snapshot(checked):
        if not calls:
            calls.append(checked.id)
            elsewhere(app, lambda: act().id)  # the first request, committed while this one is under way
        return real(checked)

    monkeypatch.setattr(cases, "snapshot", snapshot)
    act()
    fresh = db.session.get(Case, case.id)
    db.session.refresh(fresh)
    co = [u.username for u in fresh.co_handlers]
    assert co == (["radgjevar2"] if change == "add" else [])
    assert fresh.handler.username == ("radgjevar2" if change == "handler" else "radgjevar1")


def test_a_number_registered_by_someone_else_a_moment_ago_is_refused_not_a_500(app, ctx, monkeypatch):
    """The check that an organisation number or a national id is free ran before the write: another request's
    registration in between made the write fail on the unique index, a 500. Now the same refusal."""
    from ppt_web.clients import service as client_service
    from ppt_web.generate import org_number

    from .helpers import elsewhere

    number = org_number(4242)
    real, calls = organisations.validation.org_number, []

    def org_number_checked(value, *args, **kwargs):
        checked = real(value, *args, **kwargs)
        if not calls:
            calls.append(value)
            elsewhere(app, lambda: organisations.register_organisation(
                user("konsulent"), name="Ein annan skule", org_number=number, kind="school").id)
        return checked

    monkeypatch.setattr(organisations.validation, "org_number", org_number_checked)
    with pytest.raises(Conflict):
        organisations.register_organisation(user("konsulent"), name="Hasund skule", org_number=number, kind="school")
    monkeypatch.undo()
    db.session.rollback()

    mine, theirs = builders.client("radgjevar1", given_name="Kai"), builders.valid_national_id(777)
    real_unique, calls2 = client_service._unique_national_id, []

    def unique(actor, value, except_id=None):
        real_unique(actor, value, except_id)
        if not calls2:
            calls2.append(value)
            elsewhere(app, lambda: builders.client("radgjevar1", n=777, given_name="Eva").id)

    monkeypatch.setattr(client_service, "_unique_national_id", unique)
    data = client_service.ClientData(national_id=theirs, given_name="Kai", family_name="Nordmann",
                                     handler_id=mine.handler_id)
    with pytest.raises(Conflict):
        client_service.update_client(user("sekretaer"), mine.id, data)
