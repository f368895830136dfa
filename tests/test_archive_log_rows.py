"""The archive log's kept rows (finished jobs' HTML, kept per process): never shown to a reader who may
not see or do what the kept row shows, never in another language, never stale after a change; and the
row an action re-renders is the very row of the full page."""
from __future__ import annotations

import re

from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Client, Permission

from . import builders
from .conftest import role

HX = {"HX-Request": "true"}


def _row(html: str, job_id: int) -> str:
    start = html.index(f'<tr id="job-{job_id}"')
    return html[start:html.index("</tr>", start) + len("</tr>")]


def _finished_job_of_a_client(app, given: str = "Mari", family: str = "Dimna") -> tuple[int, int]:
    """A case of a client whose first archive job is done and archived (a row the log keeps)."""
    with app.app_context():
        person = builders.client(given_name=given, family_name=family)
        case = builders.case(client_obj=person)
        job = db.session.scalars(select(ArchiveJob).where(ArchiveJob.case_id == case.id)
                                 .order_by(ArchiveJob.id)).first()
        job.job_status, job.archive_status = "done", "archived"
        db.session.commit()
        return job.id, person.id


def test_a_kept_row_does_not_show_a_clients_name_to_a_reader_who_may_not_see_every_client(app, client, login_as):
    """The same rights but search_all: the kept row (with the name) is not the one shown."""
    job_id, _client_id = _finished_job_of_a_client(app)
    first = _row(login_as("konsulent").get("/archive-log/").get_data(as_text=True), job_id)
    assert "Mari Dimna" in first  # kept now, with the name
    client.post("/logout")
    with app.app_context():
        consultant = role("konsulent")
        consultant.permissions.remove(db.session.get(Permission, "search_all"))
        db.session.commit()
    row = _row(login_as("konsulent").get("/archive-log/").get_data(as_text=True), job_id)
    assert "Mari Dimna" not in row and 'class="client"' in row
    assert row == first.replace("Mari Dimna", "Klient")  # the rest of the row as before


def test_a_kept_row_does_not_offer_actions_to_a_reader_who_may_not_do_them(app, client, login_as):
    job_id, _client_id = _finished_job_of_a_client(app)
    assert f"/archive-log/{job_id}/delete" in _row(login_as("konsulent").get("/archive-log/").get_data(as_text=True),
                                                    job_id)
    client.post("/logout")
    row = _row(login_as("leiar").get("/archive-log/").get_data(as_text=True), job_id)
    assert "Mari Dimna" in row and "/delete" not in row and 'class="actions"' not in row


def test_a_kept_row_follows_the_readers_language(app, login_as):
    from ppt_web.auth import service as auth

    job_id, _client_id = _finished_job_of_a_client(app)
    browser = login_as("konsulent")
    nynorsk = _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    with app.app_context():
        auth.set_language(builders.user("konsulent"), "en")
    english = _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    assert english != nynorsk
    assert ">Archived<" in english and ">Arkivert<" in nynorsk  # the archive status column


def test_a_kept_row_shows_a_renamed_client_by_the_new_name(app, login_as):
    job_id, client_id = _finished_job_of_a_client(app, "Mari", "Dimna")
    browser = login_as("konsulent")
    assert "Mari Dimna" in _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    with app.app_context():
        db.session.get(Client, client_id).family_name = "Hauge"
        db.session.commit()
    row = _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    assert "Mari Hauge" in row and "Dimna" not in row


def test_a_kept_row_of_a_failed_job_changes_when_the_job_is_retried(app, login_as):
    job_id, _client_id = _finished_job_of_a_client(app)
    with app.app_context():
        job = db.session.get(ArchiveJob, job_id)
        job.archive_status = "failed"
        db.session.commit()
    browser = login_as("konsulent")
    assert f"/archive-log/{job_id}/retry" in _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    browser.post(f"/archive-log/{job_id}/retry", headers=HX)
    row = _row(browser.get("/archive-log/").get_data(as_text=True), job_id)
    assert "/retry" not in row and 'class="job failed"' not in row


def test_the_row_a_retry_returns_is_the_row_of_the_full_page_and_of_the_live_partial(app, login_as):
    job_id, _client_id = _finished_job_of_a_client(app)
    with app.app_context():
        job = db.session.get(ArchiveJob, job_id)
        job.archive_status = "failed"
        db.session.commit()
    browser = login_as("konsulent")
    returned = browser.post(f"/archive-log/{job_id}/retry", headers=HX).get_data(as_text=True)
    page = browser.get("/archive-log/").get_data(as_text=True)
    live = browser.get("/archive-log/", headers={**HX, "HX-Target": "archive-rows"}).get_data(as_text=True)
    assert returned == _row(page, job_id) == _row(live, job_id)
    assert re.fullmatch(rf'<tr id="job-{job_id}" class="job ">.*</tr>', returned, re.S)


def test_every_row_of_the_page_is_the_same_when_kept(app, login_as):
    """The second view of a page (its finished rows kept) is byte for byte the first."""
    with app.app_context():
        for n in range(3):
            builders.case(title=f"Sak {n}")
        for job in db.session.scalars(select(ArchiveJob)):
            job.job_status, job.archive_status = "done", "archived"
        db.session.commit()
    browser = login_as("konsulent")
    app.extensions.pop("ppt_archive_rows", None)
    first = browser.get("/archive-log/", headers={**HX, "HX-Target": "archive-rows"}).get_data(as_text=True)
    assert app.extensions["ppt_archive_rows"]  # rows were kept
    again = browser.get("/archive-log/", headers={**HX, "HX-Target": "archive-rows"}).get_data(as_text=True)
    assert first == again and first.count('class="job ') == 3
