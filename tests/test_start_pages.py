"""The start page per role: each list against a hand-made expectation on one small, fixed data set."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ppt_web.cases import approval
from ppt_web.cases import service as cases
from ppt_web.clock import today, utcnow
from ppt_web.extensions import db
from ppt_web.main import start
from ppt_web.models import (
    AccessGroup,
    ArchiveJob,
    Case,
    Dispatch,
    InboxItem,
    JournalPost,
    Notification,
    PaperOriginal,
)
from ppt_web.models.dispatch import DispatchStatus
from ppt_web.models.inbox import InboxSource, InboxStatus

from . import builders
from .conftest import user


def _opened(case, days: int) -> None:
    db.session.get(Case, case.id).opened_on = today() - timedelta(days=days)
    db.session.commit()


def _item(status: InboxStatus, name: str, claimed_by: str | None = None, minutes_ago: int = 0, **extra) -> InboxItem:
    row = InboxItem(source=InboxSource.UPLOAD, status=status, filename=name, **extra)
    if claimed_by:
        row.claimed_by_id = user(claimed_by).id
        row.claimed_at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.add(row)
    db.session.flush()
    return row


def build_world() -> SimpleNamespace:
    """Two handlers, a co-handled case, a team case, approvals both ways, restanser, a finished
    assessment, inbox items, paper originals, archive jobs in trouble and a failed dispatch."""
    w = SimpleNamespace()
    anna = builders.client("radgjevar1", given_name="Anna", family_name="Berg")
    bjorn = builders.client("radgjevar2", given_name="Bjørn", family_name="Dahl")
    cecilie = builders.client("radgjevar2", given_name="Cecilie", family_name="Eik")
    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))  # coordinator radgjevar1
    w.own = builders.case("radgjevar1", "expert_assessment", anna, "Eigen sak")
    w.co = builders.case("radgjevar2", "follow_up", bjorn, "Medsak")
    cases.add_cohandler(user("radgjevar2"), w.co.id, user("radgjevar1").id)
    w.other = cases.register_case(user("konsulent"), cases.CaseData(
        kind="person", title="Annan sak", category="referral", client_id=cecilie.id, handler_id=user("radgjevar2").id,
        access_group_id=team.id))
    w.done = builders.case("radgjevar1", "expert_assessment", anna, "Ferdig vurdering")
    w.closed = builders.case("radgjevar1", "other", anna, "Lukka")
    cases.close_case(user("radgjevar1"), w.closed.id)
    _opened(w.own, 40)
    _opened(w.co, 10)
    _opened(w.other, 5)

    w.draft = builders.post(w.own, post_type="N", title="Utkast notat")
    w.other_draft = builders.post(w.other, post_type="N", title="Anna sitt utkast")
    w.returned = builders.post(w.own, post_type="U", title="Brev i retur", correspondent="Føresette")
    approval.send_for_approval(user("radgjevar1"), w.returned.id, user("leiar").id)
    approval.return_for_changes(user("leiar"), w.returned.id, "Rett adressa")
    w.waiting = builders.post(w.own, post_type="U", title="Ventar på leiar", correspondent="Føresette")
    approval.send_for_approval(user("radgjevar1"), w.waiting.id, user("leiar").id)
    w.for_coordinator = builders.post(w.other, post_type="U", title="Til koordinator", correspondent="Skule")
    approval.send_for_approval(user("radgjevar2"), w.for_coordinator.id, user("radgjevar1").id)

    w.in_own = builders.finalized_post(w.own, post_type="I", title="Tilvising eigen", correspondent="Skule",
                                       document_date=today() - timedelta(days=20))
    w.in_co = builders.finalized_post(w.co, post_type="I", title="Tilvising med", correspondent="Skule",
                                      document_date=today() - timedelta(days=30))
    w.in_other = builders.finalized_post(w.other, post_type="I", title="Tilvising annan", correspondent="Skule",
                                         document_date=today() - timedelta(days=25))
    w.held = builders.post(w.co, post_type="I", title="Halde unna", correspondent="BUP")
    db.session.get(JournalPost, w.held.id).held_back = True
    db.session.commit()
    w.assessment = builders.finalized_post(w.done, post_type="U", title="Sakkunnig vurdering", correspondent="Føresette")

    w.new_item = _item(InboxStatus.NEW, "ny.pdf")
    w.taken = _item(InboxStatus.IN_PROGRESS, "teken.pdf", "sekretaer", minutes_ago=30)
    w.checked = _item(InboxStatus.CHECKED, "kontrollert.pdf", "konsulent", minutes_ago=10)
    w.refused = _item(InboxStatus.SYSTEM_REJECTED, "avvist.txt")
    _item(InboxStatus.REJECTED, "sett.pdf", rejected_by_id=user("sekretaer").id)
    doc = db.session.get(JournalPost, w.in_own.id).main_document
    papers = []
    for name, due, destroyed in (("papir-forfalle.pdf", -1, False), ("papir-seinare.pdf", 30, False),
                                 ("papir-destruert.pdf", -5, True)):
        item = _item(InboxStatus.TRANSFERRED, name)
        papers.append(PaperOriginal(item_id=item.id, document_id=doc.id, storage_place="Arkivskap 2",
                                    scanned_on=today() - timedelta(days=90), destroy_by=today() + timedelta(days=due),
                                    destroyed_at=utcnow() if destroyed else None))
    db.session.add_all(papers)
    db.session.commit()
    w.paper_due = papers[0]

    jobs = list(db.session.scalars(select(ArchiveJob).order_by(ArchiveJob.id)))
    w.failed_job, w.correction_job, w.stuck_job = jobs[0], jobs[1], jobs[2]
    w.failed_job.job_status, w.failed_job.archive_status, w.failed_job.message = "done", "failed", "Avvist av arkivet"
    w.correction_job.job_status, w.correction_job.archive_status = "done", "failed"
    w.correction_job.message_code = "unarchivable_text"
    w.correction_job.message_params = {"what": "case", "object_id": w.correction_job.case_id, "field": "tittel"}
    w.correction_job.message = "Arkivet kan ikkje ta imot teksten"
    w.stuck_job.job_status, w.stuck_job.created_at = "new", utcnow() - timedelta(hours=3)
    for job in jobs[3:]:
        job.job_status, job.archive_status = "done", "archived"
    w.dispatch = Dispatch(post_id=w.assessment.id, external_ref=str(uuid.uuid4()), recipient_kind="person",
                          recipient_name="Kari Føresett", recipient_id=builders.valid_national_id(77),
                          address_line1="Heimvegen 2", postal_code="6065", city="Ulsteinvik",
                          status=DispatchStatus.FAILED, created_by_id=user("radgjevar1").id, message="Avvist")
    db.session.add(w.dispatch)
    db.session.commit()
    return w


@pytest.fixture
def world(ctx):
    return build_world()


def ids(rows) -> list[int]:
    return [r.id for r in rows.rows]


def test_handler_panel_lists_own_and_co_handled_work_in_order(world):
    """radgjevar1: own and co-handled cases, drafts, a post sent back, one waiting, restanser, one case to close."""
    w = world
    panel = start.panels(user("radgjevar1"))
    assert list(panel) == ["handler"]
    mine = panel["handler"]
    assert ids(mine["open_cases"]) == [w.own.id, w.co.id, w.done.id]  # oldest first; closed and others' left out
    assert [r.client.name for r in mine["open_cases"].rows] == ["Anna Berg", "Bjørn Dahl", "Anna Berg"]
    assert ids(mine["drafts"]) == [w.draft.id, w.returned.id]
    assert [(p.id, e.comment, e.actor.username) for p, e in mine["returned"].rows] == [(w.returned.id, "Rett adressa", "leiar")]
    assert ids(mine["sent_for_approval"]) == [w.waiting.id]
    assert ids(mine["to_approve"]) == [w.for_coordinator.id]  # as the team's coordinator
    assert ids(mine["outstanding"]) == [w.in_co.id, w.in_own.id, w.held.id] and mine["outstanding"].total == 3
    assert ids(mine["to_close"]) == [w.done.id]
    unread = list(db.session.scalars(select(Notification.id).where(Notification.user_id == user("radgjevar1").id)
                                     .order_by(Notification.id.desc())))
    assert ids(mine["notifications"]) == unread and mine["notifications"].total == len(unread) == 3  # returned, asked, approved


def test_handler_panel_never_shows_another_handlers_case(world):
    """radgjevar2's own case stays out of radgjevar1's lists, except the one post asked of them to approve."""
    panel = start.panels(user("radgjevar1"))["handler"]
    seen_cases = {r.id for r in panel["open_cases"].rows} | {r.id for r in panel["to_close"].rows}
    seen_posts = {r.id for key in ("drafts", "sent_for_approval", "outstanding") for r in panel[key].rows}
    assert world.other.id not in seen_cases
    assert not seen_posts & {world.other_draft.id, world.in_other.id, world.for_coordinator.id}


def test_the_other_handler_sees_their_own(world):
    w = world
    panel = start.panels(user("radgjevar2"))["handler"]
    assert ids(panel["open_cases"]) == [w.co.id, w.other.id]
    assert ids(panel["drafts"]) == [w.other_draft.id]  # the held-back post waits for the leader, not for them
    assert ids(panel["sent_for_approval"]) == [w.for_coordinator.id]
    assert ids(panel["outstanding"]) == [w.in_co.id, w.in_other.id, w.held.id]
    assert panel["returned"].total == panel["to_close"].total == panel["to_approve"].total == 0


def test_secretary_panel_counts_the_inbox_and_names_who_has_what(world):
    w = world
    panel = start.panels(user("sekretaer"))
    assert list(panel) == ["secretary"]  # Merkantil journals too, but handles nothing: no empty "My work"
    sec = panel["secretary"]
    assert sec["inbox"] == [("new", 1), ("in_progress", 1), ("checked", 1), ("system_rejected", 1)]
    assert [(i.id, i.claimed_by.username) for i in sec["in_progress"].rows] == [(w.taken.id, "sekretaer"),
                                                                                (w.checked.id, "konsulent")]
    assert ids(sec["paper_due"]) == [w.paper_due.id] and sec["paper_due"].total == 1


def test_consultant_panel_lists_archive_and_dispatch_trouble(world):
    w = world
    panel = start.panels(user("konsulent"))
    assert list(panel) == ["secretary", "consultant"]
    con = panel["consultant"]
    assert ids(con["failed_jobs"]) == [w.correction_job.id, w.failed_job.id]  # newest first
    assert ids(con["stuck_jobs"]) == [w.stuck_job.id]
    assert ids(con["corrections"]) == [w.correction_job.id]
    assert ids(con["failed_dispatches"]) == [w.dispatch.id]


def test_leader_panel_shows_approvals_held_back_and_open_cases_by_handler(world):
    w = world
    panel = start.panels(user("leiar"))
    assert list(panel) == ["leader", "consultant"]  # the leader reads the archive log too
    lead = panel["leader"]
    assert ids(lead["approvals"]) == [w.waiting.id, w.for_coordinator.id]  # every waiting post, oldest first
    assert ids(lead["held_back"]) == [w.held.id]
    assert lead["teams"] is False and lead["team_cases"].total == 0
    # own and co-handled: radgjevar1 handles two and co-handles radgjevar2's follow-up
    assert [(u.username, n) for u, n, _oldest in lead["by_handler"]] == [("radgjevar1", 3), ("radgjevar2", 2)]
    assert panel["consultant"]["corrections"].total == 0  # no correct_metadata: not asked of the leader


def test_a_leader_in_a_team_sees_the_teams_open_cases(world):
    team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
    team.members.append(user("nestleiar"))
    db.session.commit()
    lead = start.panels(user("nestleiar"))["leader"]
    # the team's access group (other), and what its members handle (own, done) or co-handle (co); oldest first
    w = world
    assert lead["teams"] is True and lead["by_handler"] == []
    assert ids(lead["team_cases"]) == [w.own.id, w.co.id, w.other.id, w.done.id]


def test_lists_are_bounded_and_still_count_everything(ctx):
    for n in range(start.OPEN_SHOWN + 2):
        builders.case("radgjevar1", "other", title=f"Sak {n}")
    cases_ = start.panels(user("radgjevar1"))["handler"]["open_cases"]
    assert len(cases_.rows) == start.OPEN_SHOWN and cases_.total == start.OPEN_SHOWN + 2


def _attr(html: str, section: str, name: str) -> list[str]:
    part = html.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return re.findall(rf'data-{name}="(\d+)"', part)


@pytest.mark.parametrize("username, shown, hidden", [
    ("radgjevar1", ["panel-handler"], ["panel-secretary", "panel-consultant", "panel-leader"]),
    ("sekretaer", ["panel-secretary"], ["panel-handler", "panel-consultant", "panel-leader"]),
    ("konsulent", ["panel-secretary", "panel-consultant"], ["panel-handler", "panel-leader"]),
    ("leiar", ["panel-consultant", "panel-leader"], ["panel-handler", "panel-secretary"]),
])
def test_the_start_page_shows_a_panel_per_role(app, client, login_as, username, shown, hidden):
    with app.app_context():
        w = build_world()
        expected = {"radgjevar1": ("panel-handler", "case", [w.own.id, w.co.id, w.done.id, w.done.id]),
                    "sekretaer": ("panel-secretary", "item", [w.taken.id, w.checked.id]),
                    "konsulent": ("panel-consultant", "job", [w.correction_job.id, w.failed_job.id, w.stuck_job.id,
                                                              w.correction_job.id]),
                    "leiar": ("panel-leader", "post", [w.waiting.id, w.for_coordinator.id, w.held.id])}[username]
    login_as(username)
    html = client.get("/").get_data(as_text=True)
    for panel in shown:
        assert f'id="{panel}"' in html
    for panel in hidden:
        assert f'id="{panel}"' not in html
    section, attribute, values = expected
    assert _attr(html, section, attribute) == [str(v) for v in values]
    assert 'id="start-tiles"' in html


def test_an_empty_panel_says_so_in_one_line(client, login_as):
    login_as("radgjevar2")
    html = client.get("/").get_data(as_text=True)
    assert 'id="panel-handler-empty"' in html and 'id="open-cases"' not in html


def test_the_held_back_row_links_to_the_decision_page_when_there_is_one(app, client, login_as):
    with app.app_context():
        w = build_world()
        held = w.held.id
    login_as("leiar")
    html = client.get("/").get_data(as_text=True)
    with app.test_request_context():
        from flask import url_for

        assert f'href="{url_for("cases.hold_back_decision", post_id=held)}"' in html


def test_the_start_page_costs_a_few_queries_whatever_the_data(app, client, login_as):
    """One query per list (with its count), not one per row: more rows cost no more queries."""
    from sqlalchemy import event

    def queries() -> int:
        seen = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    with app.app_context():
        build_world()
    login_as("konsulent")
    first = queries()
    with app.app_context():
        build_world()
    assert queries() == first


# The closing worklist's rule: only the assessment or statement itself makes a case finished -------


def _letter_case(shipped_key: str, category: str):
    """A case with its incoming referral finalized, and a finalized letter from a shipped template."""
    from ppt_web.cases import posts
    from ppt_web.letters.shipped import ensure_shipped
    from ppt_web.models.letters import DocumentTemplate
    from tests.test_letters import case_with_recipients, new_letter

    ensure_shipped()
    tpl = db.session.scalar(select(DocumentTemplate).where(DocumentTemplate.shipped_key == shipped_key))
    case = case_with_recipients(category=category)
    for post in list(db.session.get(Case, case.id).posts):
        posts.finalize(user("radgjevar1"), post.id)
    builders.finalize(new_letter(case, tpl), "radgjevar1")
    return case


def _finished(username: str = "radgjevar1") -> list[int]:
    return [c.id for c in cases.worklist(user(username))["finished"]]


def test_an_invitation_alone_does_not_make_a_case_finished(ctx):
    invited = _letter_case("invitation", "expert_assessment")
    assert db.session.get(Case, invited.id).posts[-1].approved_by_id is not None  # approved, and still not the assessment
    assert _finished() == []


def test_an_expert_assessment_letter_or_a_statement_letter_does(ctx):
    assessed = _letter_case("expert_school", "expert_assessment")
    stated = _letter_case("statement", "statement")
    assert set(_finished()) == {assessed.id, stated.id}


def test_an_uploaded_assessment_counts_once_a_leader_approved_it(ctx):
    """Uploaded PDFs have no template kind: the leader's approval, which every outgoing post of an
    expert assessment case needs, is what marks the assessment."""
    approved = builders.case("radgjevar1", "expert_assessment", title="Opplasta vurdering")
    builders.finalized_post(approved, post_type="U", correspondent="Føresette", title="Sakkunnig vurdering")
    unapproved = builders.case("radgjevar1", "statement", title="Opplasta uttale")
    builders.finalized_post(unapproved, post_type="U", correspondent="Skule", title="Uttale")
    assert _finished() == [approved.id]
    assert [c.id for c in cases.worklist(user("radgjevar1"), handler_id=user("radgjevar2").id)["finished"]] == []


# Added with issue 18's review ----------------------------------------------------------------------


def test_cases_to_close_are_counted_in_full_not_up_to_the_rows_shown(ctx):
    from ppt_web.cases.service import FOLLOW_UP_IDLE

    for n in range(start.SHOWN + 2):
        case = builders.case("radgjevar1", "follow_up", title=f"Oppfølging {n}")
        db.session.get(Case, case.id).last_activity_at = utcnow() - FOLLOW_UP_IDLE - timedelta(days=1)
    db.session.commit()
    to_close = start.panels(user("radgjevar1"))["handler"]["to_close"]
    assert len(to_close.rows) == start.SHOWN and to_close.total == start.SHOWN + 2


def test_held_back_documents_are_counted_without_a_cap(ctx):
    case = builders.case("radgjevar1", "other")
    for n in range(start.SHOWN + 3):
        db.session.get(JournalPost, builders.post(case, post_type="I", title=f"Halde unna {n}",
                                                  correspondent="BUP").id).held_back = True
    db.session.commit()
    held = start.panels(user("leiar"))["leader"]["held_back"]
    assert len(held.rows) == start.SHOWN and held.total == start.SHOWN + 3


def test_lists_link_to_their_page_or_say_how_many_they_show(app, client, login_as):
    with app.app_context():
        case = builders.case("radgjevar1", "other")
        for n in range(start.OPEN_SHOWN + 1):
            builders.post(case, post_type="N", title=f"Utkast {n}")
        held = builders.post(case, post_type="I", title="Halde unna", correspondent="BUP").id
        db.session.get(JournalPost, held).held_back = True
        db.session.commit()
    login_as("radgjevar1")
    html = client.get("/").get_data(as_text=True)
    assert f'id="drafts-shown" data-shown="{start.OPEN_SHOWN}"' in html  # no page of drafts: "10 of 11"
    assert f'data-post="{held}"' not in html.split('id="drafts"', 1)[1].split("</ul>", 1)[0]
    assert 'id="open-cases-shown"' not in html  # one case: all of it is shown
    client.post("/logout")
    login_as("leiar")
    html = client.get("/").get_data(as_text=True)
    assert '<a href="/hold-back" id="held-back-more">' in html


def test_the_consultant_panel_names_clients_only_to_those_who_see_all(app, client, login_as):
    from ppt_web.models import Permission

    with app.app_context():
        w = build_world()
        job_id = w.failed_job.id
        job = db.session.get(ArchiveJob, job_id)
        name = job.client.name if job.client else None
        assert name, "the failed job of the world belongs to a client"
    login_as("konsulent")
    part = client.get("/").get_data(as_text=True).split('id="failed-jobs"', 1)[1].split("</ul>", 1)[0]
    assert name in part
    with app.app_context():
        from .conftest import role

        search_all = db.session.scalar(select(Permission).where(Permission.code == "search_all"))
        consultant = role("konsulent")
        consultant.permissions.remove(search_all)
        db.session.commit()
        assert user("konsulent").can("archive_log") and not user("konsulent").can("search_all")
    part = client.get("/").get_data(as_text=True).split('id="failed-jobs"', 1)[1].split("</ul>", 1)[0]
    assert f'data-job="{job_id}"' in part and name not in part


def test_the_roles_line_names_roles_given_through_a_team(app, client, login_as):
    from ppt_web.models import Role

    with app.app_context():
        team = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team skule"))
        team.roles.append(Role(code="teamrolle", name="Teamrolle Xyz", active=True, position=99))
        db.session.commit()
    login_as("radgjevar2")
    assert "Teamrolle Xyz" in client.get("/").get_data(as_text=True)


def test_by_handler_rows_do_not_lead_to_the_restanseliste(app, client, login_as):
    with app.app_context():
        build_world()
    login_as("leiar")
    part = client.get("/").get_data(as_text=True).split('id="by-handler"', 1)[1].split("</table>", 1)[0]
    assert "/posts/outstanding" not in part
