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
from ppt_web.models import ArchiveJob, InboxSource, Setting
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
