"""The archive settings page: the service's unit and archive part and the case system's name, kept by the
administrator; through the service (rules) and the pages."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ppt_web.admin import service as admin
from ppt_web.archive import identity
from ppt_web.errors import Conflict, Forbidden, Invalid
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Permission, Setting

from . import builders
from .conftest import activity_rows, sign_in, user

VALUES = {"fagsystem": "ppt-ulstein", "administrativ_enhet": "PP-tenesta", "arkivdel": "PPT"}


def _settings_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Setting))


@pytest.mark.parametrize("username", ["radgjevar1", "nestleiar"])
def test_saving_needs_sysadmin_edit_even_around_the_page(ctx, username):
    with pytest.raises(Forbidden):
        admin.save_archive_settings(user(username), **VALUES)
    db.session.rollback()
    assert _settings_rows() == 0 and not activity_rows("archive_settings_changed")


@pytest.mark.app_config(PPT_ARCHIVE_SETTINGS={"administrativ_enhet": "Frå konfigurasjonen", "system": "ppt"})
def test_saved_values_reach_the_messages_settings_and_the_log(ctx):
    """The screen wins over the configuration; an emptied field falls back to it; each change is logged."""
    assert identity.settings()["administrativ_enhet"] == "Frå konfigurasjonen"
    admin.save_archive_settings(user("sekretaer"), **VALUES)  # merkantil holds sysadmin_edit
    assert {k: identity.settings()[k] for k in VALUES} == VALUES and identity.settings()["system"] == "ppt"
    row = activity_rows("archive_settings_changed")[-1]
    assert row.actor_name == "sekretaer" and row.before == {} and row.after == VALUES
    admin.save_archive_settings(user("leiar"), fagsystem="ppt-ulstein", administrativ_enhet="", arkivdel="PPT2")
    assert identity.settings()["administrativ_enhet"] == "Frå konfigurasjonen"
    assert identity.saved() == {"fagsystem": "ppt-ulstein", "arkivdel": "PPT2"}
    row = activity_rows("archive_settings_changed")[-1]
    assert row.before == VALUES and row.after == {"fagsystem": "ppt-ulstein", "arkivdel": "PPT2"}
    stored = db.session.get(Setting, "archive.arkivdel")
    assert stored.updated_by_id == user("leiar").id
    admin.save_archive_settings(user("leiar"), fagsystem="ppt-ulstein", administrativ_enhet="", arkivdel="PPT2")
    assert len(activity_rows("archive_settings_changed")) == 2  # nothing changed, nothing logged


@pytest.mark.parametrize("values, field", [
    ({"arkivdel": "PPT 1"}, "arkivdel"),
    ({"arkivdel": "A" * 21}, "arkivdel"),
    ({"administrativ_enhet": "PP-tenesta\x07"}, "administrativ_enhet"),
    ({"administrativ_enhet": "PP\ntenesta"}, "administrativ_enhet"),
    ({"administrativ_enhet": "P" * 201}, "administrativ_enhet"),
    ({"fagsystem": "ppt\x00web"}, "fagsystem"),
    ({"fagsystem": "p" * 101}, "fagsystem"),
])
def test_bad_values_are_refused_by_field_and_save_nothing(ctx, values, field):
    with pytest.raises(Invalid) as refused:
        admin.save_archive_settings(user("leiar"), **{**VALUES, **values})
    assert refused.value.details["field"] == field
    db.session.rollback()
    assert _settings_rows() == 0 and not activity_rows("archive_settings_changed")


def test_a_new_system_name_after_archive_jobs_needs_confirmation(ctx):
    """Before any job the name is free; after, the archive knows objects by it, so a change is confirmed."""
    admin.save_archive_settings(user("leiar"), **VALUES)
    builders.finalized_post(builders.case(category="follow_up"), correspondent="Skule")
    assert db.session.scalar(select(func.count()).select_from(ArchiveJob))
    with pytest.raises(Conflict) as refused:
        admin.save_archive_settings(user("leiar"), **{**VALUES, "fagsystem": "ppt-ny"})
    assert refused.value.details["field"] == "confirm_fagsystem"
    db.session.rollback()
    assert identity.settings()["fagsystem"] == "ppt-ulstein"
    with pytest.raises(Conflict):  # emptying it falls back to the configured name: a change too
        admin.save_archive_settings(user("leiar"), **{**VALUES, "fagsystem": ""})
    db.session.rollback()
    admin.save_archive_settings(user("leiar"), **{**VALUES, "arkivdel": "PPT2"})  # other fields: no question
    admin.save_archive_settings(user("leiar"), **{**VALUES, "fagsystem": "ppt-ny"}, confirm_fagsystem=True)
    assert identity.settings()["fagsystem"] == "ppt-ny"
    assert activity_rows("archive_settings_changed")[-1].detail == "fagsystem_renamed"


def test_the_page_shows_saves_and_refuses(app, login_as):
    web = login_as("admin")  # sysadmin_view and sysadmin_edit
    page = web.get("/admin/archive-settings").get_data(as_text=True)
    assert 'id="archive-settings"' in page and 'name="arkivdel"' in page and 'id="fagsystem-warning"' in page
    assert 'name="confirm_fagsystem"' not in page  # no archive job yet: nothing to confirm
    bad = web.post("/admin/archive-settings", data={**VALUES, "arkivdel": "P P"})
    assert bad.status_code == 422 and 'id="arkivdel-err"' in bad.get_data(as_text=True)
    saved = web.post("/admin/archive-settings", data=VALUES)
    assert saved.status_code == 302
    assert 'value="PP-tenesta"' in web.get("/admin/archive-settings").get_data(as_text=True)
    with app.app_context():
        assert identity.saved() == VALUES


def test_the_page_is_read_only_without_sysadmin_edit_and_closed_without_sysadmin_view(app, login_as):
    with app.app_context():
        admin.save_archive_settings(user("leiar"), **VALUES)
        role = user("admin").roles[0]
        role.permissions.remove(db.session.get(Permission, "sysadmin_edit"))
        db.session.commit()
    web = login_as("admin")
    page = web.get("/admin/archive-settings").get_data(as_text=True)
    assert "PP-tenesta" in page and 'name="arkivdel"' not in page
    assert web.post("/admin/archive-settings", data=VALUES).status_code == 403
    other = app.test_client()
    sign_in(other, "radgjevar1")
    assert other.get("/admin/archive-settings").status_code == 403
