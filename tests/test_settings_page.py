"""The settings page: what the service sets at runtime over the configuration, each change logged with
the old and the new value, bad input refused with nothing changed, and the change used by the code."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ppt_web import runtime_settings
from ppt_web.archive.log import alerts
from ppt_web.clock import utcnow
from ppt_web.errors import Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import ActivityLog, ArchiveJob, InboxSource, Setting
from ppt_web.postreg import upload

from . import builders
from .conftest import activity_rows, role, user


def _settings_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Setting)) or 0


# --- through the service --------------------------------------------------------------------

def test_value_is_the_saved_row_else_the_configuration(ctx):
    assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
    runtime_settings.change(user("leiar"), "paper.storage_place", "  Kjellaren,   skap 3 ")
    assert runtime_settings.value("paper.storage_place") == "Kjellaren, skap 3"
    runtime_settings.reset(user("leiar"), "paper.storage_place")
    assert runtime_settings.value("paper.storage_place") == "Arkivrommet"
    changed = activity_rows("setting_changed")
    assert [(r.before["value"], r.after["value"]) for r in changed] == [
        ("Arkivrommet", "Kjellaren, skap 3"), ("Kjellaren, skap 3", "Arkivrommet")]
    assert changed[0].object_id == "paper.storage_place" and changed[0].actor_name == "leiar"


@pytest.mark.parametrize("key, raw", [
    ("alerts.archive_minutes", "abc"), ("alerts.archive_minutes", "4"), ("alerts.archive_minutes", "99999"),
    ("paper.keep_months", ""), ("paper.keep_months", "2.5"), ("paper.storage_place", "   "),
    # Less than the routine keeps paper: three months after scanning, six after downtime.
    ("paper.keep_months", "2"), ("paper.keep_months", "1"), ("paper.downtime_keep_months", "5"),
    ("paper.downtime_keep_months", "3"),
    ("paper.storage_place", "x" * 201), ("paper.storage_place", "Hylle\n3"),
])
def test_invalid_values_are_refused_and_nothing_changes(ctx, key, raw):
    with pytest.raises(Invalid):
        runtime_settings.change(user("leiar"), key, raw)
    db.session.rollback()
    assert _settings_rows() == 0 and activity_rows("setting_changed") == []


def test_changing_needs_sysadmin_edit(ctx):
    with pytest.raises(Forbidden):
        runtime_settings.change(user("radgjevar1"), "paper.storage_place", "Kjellaren")
    db.session.rollback()
    assert runtime_settings.value("paper.storage_place") == "Arkivrommet"


def test_the_routines_minimums_are_accepted(ctx):
    assert runtime_settings.change(user("leiar"), "paper.keep_months", "3") == 3
    assert runtime_settings.change(user("leiar"), "paper.downtime_keep_months", "6") == 6


def test_changing_needs_sysadmin_view_as_well_as_sysadmin_edit(app, login_as):
    """Merkantil holds sysadmin_edit but not sysadmin_view: it cannot open the page, so it cannot save a
    setting either, through the page or around it."""
    with pytest.raises(Forbidden):
        with app.app_context():
            runtime_settings.change(user("sekretaer"), "paper.keep_months", "12")
    with pytest.raises(Forbidden):
        with app.app_context():
            runtime_settings.reset(user("sekretaer"), "paper.keep_months")
    client = login_as("sekretaer")
    assert client.get("/admin/settings").status_code == 403
    assert client.post("/admin/settings", data={"key": "paper.keep_months", "value": "12"}).status_code == 403
    with app.app_context():
        assert _settings_rows() == 0 and activity_rows("setting_changed") == []


def test_two_first_saves_of_one_key_at_once_both_land_without_an_error(app, monkeypatch):
    """The second save's insert collides with the first's row (committed between its look and its
    insert): it saves again as a change of that row, logged with the first one's value as the old one."""
    from sqlalchemy.orm import Session

    with app.app_context():
        konsulent_id = user("konsulent").id
        real_get = Session.get
        raced = []

        def get(self, entity, ident, *args, **kwargs):
            found = real_get(self, entity, ident, *args, **kwargs)
            if entity is Setting and ident == "paper.storage_place" and not raced and found is None:
                raced.append(True)  # the other administrator's first save commits now
                with db.engine.begin() as other:
                    other.execute(Setting.__table__.insert().values(
                        key="paper.storage_place", value="Kjellaren", updated_at=utcnow(), updated_by_id=konsulent_id))
                    other.execute(ActivityLog.__table__.insert().values(
                        actor_name="konsulent", action="setting_changed", object_type="setting",
                        object_id="paper.storage_place", outcome="ok", before={"value": "Arkivrommet"},
                        after={"value": "Kjellaren"}, detail="paper.storage_place", at=utcnow(), remote_addr=""))
            return found

        monkeypatch.setattr(Session, "get", get)
        assert runtime_settings.change(user("leiar"), "paper.storage_place", "Loftet") == "Loftet"
        monkeypatch.undo()
        db.session.expire_all()
        assert raced and runtime_settings.value("paper.storage_place") == "Loftet"
        rows = activity_rows("setting_changed")
        assert [(r.actor_name, r.before["value"], r.after["value"]) for r in rows] == [
            ("konsulent", "Arkivrommet", "Kjellaren"), ("leiar", "Kjellaren", "Loftet")]


def test_bool_and_choice_settings_parse_what_the_form_sends():
    flag = runtime_settings.RuntimeSetting("x.flag", "X", "Flag", kind=runtime_settings.BOOL)
    assert flag.parse("1") is True and flag.parse("0") is False and flag.parse("") is False
    with pytest.raises(Invalid):
        flag.parse("kanskje")
    pick = runtime_settings.RuntimeSetting("x.pick", "X", "Pick", kind=runtime_settings.CHOICE,
                                           choices=(("a", "A"), ("b", "B")))
    assert pick.parse(" b ") == "b"
    with pytest.raises(Invalid):
        pick.parse("c")


def test_every_setting_reads_a_config_key_that_exists(app):
    for item in runtime_settings.REGISTRY.values():
        assert item.config_key in app.config, item.key
        assert len(item.key) <= 60


# --- the change is used by the code that reads it ------------------------------------------

def test_the_alert_threshold_changes_what_is_reported(app, login_as):
    with app.app_context():
        builders.case(title="Sak")
        job = db.session.scalar(select(ArchiveJob).order_by(ArchiveJob.id))
        job.job_status, job.archive_status = "done", "failed"
        job.created_at = utcnow() - timedelta(minutes=60)
        db.session.commit()
        assert alerts()["failing"] == 0  # 120 minutes by default
    client = login_as("konsulent")
    assert 'class="archive-alert"' not in client.get("/").get_data(as_text=True)
    assert client.post("/admin/settings", data={"key": "alerts.archive_minutes", "value": "30"}).status_code == 302
    assert 'class="archive-alert"' in client.get("/").get_data(as_text=True)
    with app.app_context():
        assert alerts() == {"stuck": 0, "failing": 1, "total": 1, "minutes": 30}


def test_the_storage_place_is_offered_when_paper_is_registered(app, login_as):
    with app.app_context():
        item = upload.receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(1)), "skann.pdf")
        item.source = InboxSource.SCAN
        db.session.commit()
        item_id = item.id
        runtime_settings.change(user("leiar"), "paper.storage_place", "Kjellaren, skap 3")
    page = login_as("sekretaer").get(f"/post-registration/{item_id}").get_data(as_text=True)
    assert 'value="Kjellaren, skap 3"' in page


# --- the page --------------------------------------------------------------------------------

def test_view_and_edit_permissions(app, login_as, client):
    assert login_as("radgjevar1").get("/admin/settings").status_code == 403
    assert client.post("/admin/settings", data={"key": "paper.storage_place", "value": "X"}).status_code == 403
    with app.app_context():  # Administrator without sysadmin_edit: the page, read only
        admin_role = role("admin")
        admin_role.permissions = [p for p in admin_role.permissions if p.code != "sysadmin_edit"]
        db.session.commit()
    viewer = app.test_client()
    from .conftest import sign_in
    assert sign_in(viewer, "admin").status_code == 302
    page = viewer.get("/admin/settings")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="setting-paper-storage_place"' in text
    assert 'name="value"' not in text and 'id="menu-settings"' in text
    assert viewer.post("/admin/settings", data={"key": "paper.storage_place", "value": "X"}).status_code == 403
    with app.app_context():
        assert _settings_rows() == 0


def test_page_saves_logs_and_refuses_bad_input_with_a_message(app, login_as):
    client = login_as("leiar")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'id="menu-settings"' in page and 'id="link-archive-settings"' in page and 'id="section-letterhead"' in page
    assert 'data-key="alerts.archive_minutes"' in page and 'name="value"' in page
    bad = client.post("/admin/settings", data={"key": "alerts.archive_minutes", "value": "fem"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="setting-alerts-archive_minutes-err"' in body and 'value="fem"' in body
    assert client.post("/admin/settings", data={"key": "no.such", "value": "1"}).status_code == 404
    with app.app_context():
        assert _settings_rows() == 0 and activity_rows("setting_changed") == []
    assert client.post("/admin/settings", data={"key": "paper.keep_months", "value": "4"}).status_code == 302
    page = client.get("/admin/settings").get_data(as_text=True)
    row = page.split('data-key="paper.keep_months"')[1].split("</tr>")[0]
    assert 'data-source="saved"' in row and 'value="4"' in row
    assert client.post("/admin/settings", data={"key": "paper.keep_months", "reset": "1"}).status_code == 302
    with app.app_context():
        rows = activity_rows("setting_changed")
        assert [(r.before["value"], r.after["value"]) for r in rows] == [(3, 4), (4, 3)]
        assert _settings_rows() == 0


def test_the_pages_that_name_a_setting_show_the_value_in_force(app, login_as):
    """The paper register and the approvals queue say how long paper is kept and when a wait is marked:
    the value saved on the settings page, not the configuration's."""
    with app.app_context():
        leiar = user("leiar")
        leiar.locale = "en"
        user("sekretaer").locale = "en"
        runtime_settings.change(leiar, "paper.keep_months", "17")
        runtime_settings.change(leiar, "paper.downtime_keep_months", "19")
        runtime_settings.change(leiar, "alerts.approval_warn_days", "11")
    paper = login_as("sekretaer").get("/post-registration/paper-originals").get_data(as_text=True)
    assert "kept for 17 months, paper kept during downtime for 19 months" in paper
    approvals = app.test_client()
    from .conftest import sign_in
    sign_in(approvals, "leiar")
    assert "more than 11 days are marked" in approvals.get("/approvals").get_data(as_text=True)
