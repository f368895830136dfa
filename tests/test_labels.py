"""Histories and the archive's copy show labels, readable values and dates as dd.mm.yyyy: no keys, codes
without their meaning, or Python lists."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from flask_babel import force_locale
from sqlalchemy import select

from ppt_web import i18n, labels
from ppt_web.archive import sending
from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .conftest import user

RAW = ["['", "{'", "None", "True", "False", "document_date", "correspondents", "2026-01-05",
       "posttype", ">draft<", ">finalized<", ">closed<", "status:"]


def _worked_case(app) -> tuple[int, int]:
    """A case with a corrected incoming post, a deleted draft, closed with a write-off and archived."""
    with app.app_context():
        case = builders.case()
        post = builders.finalized_post(case, post_type="I", correspondent="Skule A", document_date=date(2026, 1, 5))
        posts.correct_metadata(user("konsulent"), post.id, "Feil dato", posts.PostData(
            post_type="I", title="Nytt namn", document_date=date(2026, 1, 6),
            correspondents=[posts.CorrespondentData(name="Skule B"), posts.CorrespondentData(name="Mor")]))
        draft = builders.post(case, title="Kladd")
        posts.delete_post(user("konsulent"), draft.id, "Feilregistrert")
        cases.close_case(user("radgjevar1"), case.id, "TO")
        for job_id in db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)).all():
            sending.process(job_id, "test")
        return case.id, post.id


def _section(html: str, start: str, end: str = "</ul>") -> str:
    begin = html.index(start)
    return html[begin:html.index(end, begin)]


def _text(html: str) -> str:
    """What the reader sees: the markup's attributes (data-field="document_date") are not shown."""
    return re.sub(r"<[^>]+>", " ", html)


def test_a_case_history_shows_labels_and_readable_values(app, login_as):
    case_id, _ = _worked_case(app)
    html = login_as("radgjevar1").get(f"/cases/{case_id}").get_data(as_text=True)
    history = _section(html, '<ul class="list history">')
    assert "<code>" not in history
    for raw in RAW:
        assert raw not in _text(history), raw
    assert 'data-field="document_date"' in history and "05.01.2026" in history and "06.01.2026" in history
    assert "Skule B, Mor" in history  # a list as text
    assert 'data-field="status"' in history and "Ferdigstilt" in history
    assert "TO – Teke til orientering" in history  # the write-off method with its meaning


def test_a_posts_corrections_show_labels_and_readable_values(app, login_as):
    _, post_id = _worked_case(app)
    html = login_as("radgjevar1").get(f"/posts/{post_id}").get_data(as_text=True)
    corrections = html[html.index("Rettingar av metadata"):]
    corrections = corrections[:corrections.index("</ul>")]
    assert "<code>" not in corrections
    for raw in RAW:
        assert raw not in _text(corrections), raw
    assert "Dokumentdato" in corrections and "05.01.2026" in corrections and "Skule B, Mor" in corrections


def test_what_the_archive_holds_shows_codes_with_their_meaning(app, login_as):
    case_id, _ = _worked_case(app)
    html = login_as("radgjevar1").get(f"/archive-log/case/{case_id}").get_data(as_text=True)
    posts_table = _section(html, 'id="archive-posts"', "</table>")
    assert re.search(r"<td>I – \w", posts_table) and re.search(r"<td>F – \w", posts_table)
    assert "TO – " in posts_table
    for raw in ("['", "{'", "None", "2026-01-06"):
        assert raw not in html, raw
    assert "06.01.2026" in posts_table


def test_the_activity_log_shows_changes_with_labels(app, login_as):
    _worked_case(app)
    html = login_as("konsulent").get("/activity-log/").get_data(as_text=True)
    rows = html[html.index('id="activity-rows"'):]
    assert "<code>" not in rows
    for raw in ("['", "{'", "2026-01-05", "document_date"):
        assert raw not in _text(rows), raw
    assert 'data-field="document_date"' in rows


def test_values_are_shown_as_a_reader_reads_them(app):
    with app.test_request_context(), force_locale("en"):
        assert i18n.shown("document_date", "2026-01-05") == "05.01.2026"
        assert i18n.shown("correspondents", ["Skule", "Mor"]) == "Skule, Mor"
        assert i18n.shown("documents", ["main:a.pdf", "attachment:b.pdf"]) == "Main document: a.pdf, Attachment: b.pdf"
        assert i18n.shown("after_downtime", True) == "Yes"
        assert i18n.shown("type", "I") == "I – Incoming"
        assert i18n.shown("status", "awaiting_approval") == "Awaiting approval"
        assert i18n.shown("status", "closed") == "Closed"
        assert i18n.shown("kind", "person") == "Person case"
        assert i18n.shown("title", None) == i18n.NOTHING
        assert i18n.history_detail("case_closed", "TO: 2026/00001-1") == "TO – Taken for information: 2026/00001-1"
        assert i18n.history_detail("post_written_off", "BU 2026/00001-3") == "BU – Answered by letter: 2026/00001-3"
        changed = i18n.changes({"title": "A", "correspondents": ["X"], "correspondent_details": ["X, 1"]},
                               {"title": "B", "correspondents": ["Y"], "correspondent_details": ["Y, 2"]})
        assert [(c["label"], c["old"], c["new"]) for c in changed] == [("Title", "A", "B"),
                                                                      ("Sender / recipient", "X", "Y")]
        gone = i18n.changes({"title": "A", "number": "2026/00001-2", "sent_on": None}, None)
        assert [(c["label"], c["old"]) for c in gone] == [("Title", "A"), ("Number", "2026/00001-2")]
        assert i18n.changes(None, {"title": "A"}) == []


def test_every_logged_action_and_post_event_has_a_label():
    """A new action without a label would show as its key in the activity log and the case history."""
    source = "\n".join(p.read_text() for p in Path(i18n.__file__).parent.rglob("*.py"))
    actions = set(re.findall(r'(?:activity\.record|_log)\(\s*"([a-z_]+)"', source))
    assert len(actions) > 40
    assert sorted(actions - set(labels.ACTION_LABELS)) == []
    objects = set(re.findall(r'object_type="([a-z_]+)"', source))
    assert sorted(objects - set(labels.OBJECT_LABELS)) == []
    kinds = set(re.findall(r'\bevent\(\s*\w+,\s*\w+,\s*"([a-z_]+)"', source))
    assert sorted(kinds - set(labels.POST_EVENT_LABELS)) == []


# --- every action issue 18 added reads as text in the activity log ---------------------------------------

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _make_rows(app) -> dict[str, list[str]]:
    """One row of each action, made as the app makes it; {action: raw texts the row must not show}."""
    from ppt_web import runtime_settings
    from ppt_web.activity import service as activity
    from ppt_web.admin import service as admin
    from ppt_web.models import AccessGroup
    from ppt_web.postreg import paper

    from .conftest import role
    from .test_hold_back import held_back_post, release
    from .test_paper_register import due_original

    with app.app_context():
        group = db.session.scalar(select(AccessGroup).where(AccessGroup.name == "Team barnehage"))
        leiar = user("leiar")
        admin.add_group_role(leiar, group.id, role("merkantil").id)
        admin.remove_group_role(leiar, group.id, role("merkantil").id)
        admin.set_coordinator(leiar, group.id, None)
        runtime_settings.change(leiar, "alerts.approval_warn_days", "9")
        runtime_settings.reset(leiar, "alerts.approval_warn_days")
        original = due_original()
        paper.confirm_destroyed(user("sekretaer"), original.id)
        release(leiar, held_back_post().id)
        from ppt_web.cases import hold_back
        hold_back.keep(leiar, held_back_post().id, "Tredjepart")
        activity.record("backup_restored", actor_name="cli", object_type="backup",  # as backup.restore writes it
                        detail="backup made 2026-12-01T09:30:00+00:00, 12 files")
        db.session.commit()
        group_raw = [f"#{group.id}", "merkantil", "['", "[]"]
    return {
        "group_role_granted": group_raw, "group_role_revoked": group_raw, "group_coordinator_set": [f"#{group.id}"],
        "setting_changed": ["alerts.approval_warn_days", ":reset", "#alerts"],
        "paper_destroyed": ["destroy_by", "storage_place"],
        "post_hold_released": ["hold_decision", "released", "None"], "post_hold_kept": ["hold_decision", "kept"],
        "backup_restored": ["backup made", "T09:30"],
    }


def test_each_action_of_the_everyday_work_reads_as_text_in_the_activity_log(app, login_as):
    """No stored key or code, no ISO date, no Python list: the group and the role by name, the setting by
    its label, dates as dd.mm.yyyy."""
    raws = _make_rows(app)
    with app.app_context():
        user("konsulent").locale = "en"
        db.session.commit()
    client = login_as("konsulent")
    for action, raw in raws.items():
        html = client.get(f"/activity-log/?action={action}").get_data(as_text=True)
        rows = _text(html[html.index("<tbody>"):html.index("</tbody>")])
        assert "No rows match." not in rows, action
        for text in [*raw, "{'", "['", "None"]:
            assert text not in rows, (action, text, rows)
        assert not ISO_DAY.search(rows), (action, rows)
        if action.startswith("group_role"):
            assert "Team barnehage" in rows and "Merkantil" in rows, rows
        if action == "setting_changed":
            assert "Days before a post waiting for approval is highlighted" in rows, rows
        if action == "backup_restored":
            assert "01.12.2026 10:30" in rows, rows
        if action == "paper_destroyed":
            assert re.search(r"\d\d\.\d\d\.\d{4}", rows), rows
