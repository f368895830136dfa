"""The archive log page: failed first, filters, paging, live partial, retry, bulk retry, delete."""
from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from ppt_web.clock import utcnow
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob

from . import builders
from .conftest import activity_rows

HX = {"HX-Request": "true"}


def _jobs(app, n: int = 3) -> list[int]:
    with app.app_context():
        for i in range(n):
            builders.case(title=f"Sak {i}")
        ids = list(db.session.scalars(select(ArchiveJob.id).order_by(ArchiveJob.id)))
        return ids


def _fail(app, job_id: int, text: str = "Arkivet avviste meldinga") -> None:
    with app.app_context():
        job = db.session.get(ArchiveJob, job_id)
        job.job_status, job.archive_status, job.message = "done", "failed", text
        db.session.commit()


def test_failed_jobs_are_always_on_top(app, login_as):
    ids = _jobs(app, 4)
    _fail(app, ids[0], "Gammal feil")
    html = login_as("konsulent").get("/archive-log/").get_data(as_text=True)
    rows = [html.index(f'id="job-{i}"') for i in ids]
    assert rows[0] < min(rows[1:])  # the oldest job, failed, comes first
    assert "Gammal feil" in html


def test_leader_sees_it_read_only_and_handlers_not_at_all(app, login_as):
    ids = _jobs(app, 1)
    _fail(app, ids[0])
    html = login_as("leiar").get("/archive-log/").get_data(as_text=True)
    assert f'id="job-{ids[0]}"' in html and "/retry" not in html and "/delete" not in html
    assert app.test_client().get("/archive-log/").status_code == 302


def test_handler_gets_403(login_as):
    assert login_as("radgjevar1").get("/archive-log/").status_code == 403


def test_live_partial_keeps_the_filters(app, login_as):
    ids = _jobs(app, 3)
    _fail(app, ids[1])
    client = login_as("konsulent")
    partial = client.get("/archive-log/?status=failed", headers={**HX, "HX-Target": "archive-rows"})
    html = partial.get_data(as_text=True)
    assert html.lstrip().startswith('<tbody id="archive-rows"') and 'hx-trigger="every 2s"' in html
    assert f'id="job-{ids[1]}"' in html and f'id="job-{ids[0]}"' not in html
    assert 'hx-include="#archive-applied"' in html
    page = client.get("/archive-log/?status=failed").get_data(as_text=True)
    applied = page[page.index('<form id="archive-applied"'):]
    assert '<input type="hidden" name="status" value="failed">' in applied[:applied.index("</form>")]


def test_paging_by_id(app, login_as):
    _jobs(app, 55)
    client = login_as("konsulent")
    first = client.get("/archive-log/").get_data(as_text=True)
    assert first.count('class="job ') == 50 and "before=" in first
    import re

    before = re.search(r"before=(\d+)", first).group(1)
    second = client.get(f"/archive-log/?before={before}").get_data(as_text=True)
    assert second.count('class="job ') == 5


def test_a_date_filter_lists_by_finalized_date_and_pages_without_gaps(app, login_as):
    """With a date filter the newest finalized come first (then the newest id); "Older" goes on from
    the last row, also past several jobs of one day, and a job outside the dates never shows."""
    ids = _jobs(app, 56)
    with app.app_context():
        for n, job_id in enumerate(ids):  # dates against the id order, four jobs a day
            db.session.get(ArchiveJob, job_id).finalized_on = date(2024, 3, 1) + timedelta(days=(55 - n) // 4)
        db.session.get(ArchiveJob, ids[0]).finalized_on = date(2024, 5, 1)  # outside the filter
        db.session.commit()
        expected = [job.id for job in sorted((db.session.get(ArchiveJob, i) for i in ids[1:]),
                                             key=lambda job: (job.finalized_on, job.id), reverse=True)]
    client = login_as("konsulent")
    url = "/archive-log/?date_from=2024-03-01&date_to=2024-04-30"
    shown, page = [], client.get(url).get_data(as_text=True)
    while True:
        shown += [int(i) for i in re.findall(r'<tr id="job-(\d+)"', page)]
        more = re.search(r'href="([^"]*before=\d+[^"]*)"', page)
        if not more:
            break
        page = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert shown == expected and len(shown) == 55


def test_retry_once_even_when_clicked_twice(app, login_as):
    ids = _jobs(app, 1)
    _fail(app, ids[0])
    client = login_as("konsulent")
    row = client.post(f"/archive-log/{ids[0]}/retry", headers=HX)
    assert row.status_code == 200 and row.get_data(as_text=True).lstrip().startswith(f'<tr id="job-{ids[0]}"')
    again = client.post(f"/archive-log/{ids[0]}/retry", headers=HX)
    assert again.status_code == 200
    with app.app_context():
        job = db.session.get(ArchiveJob, ids[0])
        assert (job.job_status, job.archive_status) == ("new", "new")
        assert len(activity_rows("archive_job_retried")) == 1  # the second click changed nothing
    assert login_as("leiar").post(f"/archive-log/{ids[0]}/retry").status_code in (302, 403)


def test_bulk_retry_asks_first_then_retries_the_filtered(app, login_as):
    ids = _jobs(app, 3)
    for job_id in ids[:2]:
        _fail(app, job_id)
    client = login_as("konsulent")
    confirm = client.post("/archive-log/retry-all", data={"status": "failed"}, headers=HX).get_data(as_text=True)
    assert "2" in confirm and 'name="confirm" value="1"' in confirm
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(ArchiveJob)
                                 .where(ArchiveJob.archive_status == "failed")) == 2
    client.post("/archive-log/retry-all", data={"status": "failed", "confirm": "1"})
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(ArchiveJob)
                                 .where(ArchiveJob.archive_status == "failed")) == 0


def test_delete_needs_permission_confirmation_and_reason_and_is_audited(app, login_as):
    ids = _jobs(app, 1)
    _fail(app, ids[0])
    admin = login_as("admin")  # archive_retry but not archive_delete
    assert admin.post(f"/archive-log/{ids[0]}/delete", data={"reason": "x", "confirmation": "SLETT"}).status_code == 403
    admin.post("/logout")
    client = login_as("konsulent")
    assert client.post(f"/archive-log/{ids[0]}/delete", data={"reason": "Dobbel", "confirmation": "ja"}).status_code == 422
    assert client.post(f"/archive-log/{ids[0]}/delete", data={"reason": "", "confirmation": "SLETT"}).status_code == 422
    assert client.post(f"/archive-log/{ids[0]}/delete",
                       data={"reason": "Dobbel registrering", "confirmation": "slett"}).status_code == 302
    with app.app_context():
        job = db.session.get(ArchiveJob, ids[0])
        assert job.deleted_at is not None and job.deleted_reason == "Dobbel registrering"
        row = activity_rows("archive_job_deleted")[-1]
        assert row.before["message_id"] == job.message_id and row.before["event"] == "case_created"
        assert row.detail == "Dobbel registrering"
    assert f'id="job-{ids[0]}"' not in client.get("/archive-log/").get_data(as_text=True)


def test_alert_for_jobs_failing_too_long_in_header_and_on_the_log(app, login_as):
    from datetime import timedelta

    from ppt_web.clock import utcnow

    ids = _jobs(app, 2)
    client = login_as("konsulent")
    assert "archive-alert" not in client.get("/").get_data(as_text=True)
    _fail(app, ids[0])
    with app.app_context():
        job = db.session.get(ArchiveJob, ids[0])
        job.created_at = utcnow() - timedelta(hours=3)
        db.session.commit()
    assert 'class="archive-alert"' in client.get("/").get_data(as_text=True)
    assert "meir enn 120 minutt" in client.get("/archive-log/").get_data(as_text=True)


def test_a_deleted_job_can_be_restored(app, login_as):
    ids = _jobs(app, 1)
    _fail(app, ids[0])
    client = login_as("konsulent")
    client.post(f"/archive-log/{ids[0]}/delete", data={"reason": "Feil", "confirmation": "SLETT"})
    listed = client.get("/archive-log/?status=deleted").get_data(as_text=True)
    assert f'id="job-{ids[0]}"' in listed and "Feil" in listed
    assert client.post(f"/archive-log/{ids[0]}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(ArchiveJob, ids[0]).deleted_at is None
        assert activity_rows("archive_job_restored")[-1].detail.endswith("Feil")
    assert f'id="job-{ids[0]}"' in client.get("/archive-log/").get_data(as_text=True)


def test_the_message_column_is_shown_in_the_readers_language(app, login_as):
    """The message is stored as a code and values: the consultant reading English or Bokmål reads it in
    that language, and the stored text (for exports and logs) stays Nynorsk."""
    from ppt_web.archive import actions
    from ppt_web.auth import service as auth

    ids = _jobs(app, 1)
    _fail(app, ids[0])
    with app.app_context():
        actions.retry(builders.user("konsulent"), ids[0])
        assert db.session.get(ArchiveJob, ids[0]).message == "Sett i gang på nytt av Kari Konsulent."
    browser = login_as("konsulent")
    assert "Sett i gang på nytt av Kari Konsulent." in browser.get("/archive-log/").get_data(as_text=True)
    for locale, text in (("en", "Started again by Kari Konsulent."), ("nb", "Satt i gang på nytt av Kari Konsulent.")):
        with app.app_context():
            auth.set_language(builders.user("konsulent"), locale)
        assert text in browser.get("/archive-log/").get_data(as_text=True), locale


@pytest.mark.app_config(PPT_QUEUE_NAME=f"retry-all-{uuid.uuid4().hex[:8]}")
def test_bulk_retry_also_makes_jobs_waiting_out_a_back_off_due_now(app, login_as):
    """A job in back-off (Ny, failed, next attempt in half an hour) is retried now with the failed ones;
    a plain Ny job is left alone. Each one reset is handed to the queue once."""
    from ppt_web.queue import get_queue

    ids = _jobs(app, 3)
    _fail(app, ids[0])
    with app.app_context():
        job = db.session.get(ArchiveJob, ids[1])
        job.job_status, job.archive_status, job.attempts = "new", "failed", 6
        job.next_attempt_at = utcnow() + timedelta(minutes=32)
        db.session.commit()
        get_queue().empty()
    client = login_as("konsulent")
    page = client.get("/archive-log/").get_data(as_text=True)
    assert "(2)" in page  # the button counts both
    confirm = client.post("/archive-log/retry-all", data={}, headers=HX).get_data(as_text=True)
    assert "2" in confirm
    client.post("/archive-log/retry-all", data={"confirm": "1"})
    with app.app_context():
        for job_id in ids[:2]:
            job = db.session.get(ArchiveJob, job_id)
            assert (job.job_status, job.archive_status, job.attempts) == ("new", "new", 0)
            assert job.next_attempt_at is None
        plain = db.session.get(ArchiveJob, ids[2])
        assert (plain.job_status, plain.archive_status) == ("new", "new")
        assert len(activity_rows("archive_job_retried")) == 2
        queued = [j.args for j in get_queue().jobs if j.func_name.endswith("send_archive_job")]
        assert sorted(a[0] for a in queued) == ids[:2]
        get_queue().empty()


def _page_statements(client, url: str) -> int:
    """How many SQL statements one request of the page runs."""
    from sqlalchemy import event

    count = 0

    def counted(*_args) -> None:
        nonlocal count
        count += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    return count


def test_each_row_names_the_client_and_the_case_number_never_the_national_id(app, login_as):
    with app.app_context():
        person = builders.client(given_name="Mari", family_name="Dimna")
        case = builders.case(client_obj=person)
        post = builders.finalized_post(case, title="Samtale")
        case_number, post_number, national_id = case.number, post.number, person.national_id
        job_ids = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.case_id == case.id)
                                          .order_by(ArchiveJob.id)))
    _fail(app, job_ids[0])  # a failed row (on top) names its client as the others do
    html = login_as("konsulent").get("/archive-log/").get_data(as_text=True)
    for job_id in job_ids:
        row = html[html.index(f'<tr id="job-{job_id}"'):]
        row = row[:row.index("</tr>")]
        assert f'data-case-number="{case_number}"' in row and case_number in row
        assert "Mari Dimna" in row and national_id not in row and national_id[:6] not in row
    assert post_number in html  # the post's own row carries its number (case number and sequence)


def test_a_page_of_many_rows_costs_the_queries_of_a_page_of_one(app, login_as):
    _jobs(app, 1)
    client = login_as("konsulent")
    with app.app_context():
        one = _page_statements(client, "/archive-log/")
    ids = _jobs(app, 12)
    _fail(app, ids[0])
    _fail(app, ids[-1])
    with app.app_context():
        many = _page_statements(client, "/archive-log/")
        again = _page_statements(client, "/archive-log/?status=failed")
    assert many == one and again <= one


def test_a_deleted_job_offers_restore_not_retry(app, login_as):
    ids = _jobs(app, 1)
    _fail(app, ids[0])
    client = login_as("konsulent")  # archive_retry and archive_delete
    client.post(f"/archive-log/{ids[0]}/delete", data={"reason": "Dobbel", "confirmation": "SLETT"})
    listed = client.get("/archive-log/?status=deleted").get_data(as_text=True)
    row = listed[listed.index(f'<tr id="job-{ids[0]}"'):]
    row = row[:row.index("</tr>")]
    assert f"/archive-log/{ids[0]}/restore" in row and "/retry" not in row
    assert "/archive-log/retry-all" not in listed  # no "retry all failed" over deleted jobs
    assert client.post(f"/archive-log/{ids[0]}/retry", headers=HX).status_code == 404
    assert client.post("/archive-log/retry-all", data={"status": "deleted", "confirm": "1"}).status_code == 422
    with app.app_context():
        job = db.session.get(ArchiveJob, ids[0])
        assert job.deleted_at is not None and (job.job_status, job.archive_status) == ("done", "failed")
        assert activity_rows("archive_job_retried") == []


def test_a_national_id_typed_as_the_client_filter_goes_into_no_address(app, login_as):
    """The client filter takes names only: digits typed or sent are dropped before anything is made of it,
    so no link, pager, poll, form or redirect of the page carries a national id."""
    with app.app_context():
        person = builders.client(given_name="Mari", family_name="Dimna")
        builders.case(client_obj=person)
        nid = person.national_id
        job_ids = list(db.session.scalars(select(ArchiveJob.id).where(ArchiveJob.client_id == person.id)))
    _fail(app, job_ids[0])
    client = login_as("konsulent")
    for asked in (nid, f"Dimna {nid}"):
        for headers in ({}, {**HX, "HX-Target": "archive-rows"}):
            html = client.get(f"/archive-log/?client={asked}&before=999999", headers=headers).get_data(as_text=True)
            assert nid not in html and nid[:6] not in html
        confirm = client.post("/archive-log/retry-all", data={"client": asked}, headers=HX).get_data(as_text=True)
        assert nid not in confirm
        done = client.post("/archive-log/retry-all", data={"client": asked, "confirm": "1"})
        assert done.status_code == 302 and nid not in done.headers["Location"]
    assert "client=Dimna" in done.headers["Location"]


def test_deleted_jobs_are_listed_only_for_those_who_may_delete(app, login_as):
    """The page offers the "Deleted" filter only with archive_delete; asked for by address without it, the
    deleted jobs and their reasons stay out of the list."""
    ids = _jobs(app, 2)
    consultant = login_as("konsulent")
    assert consultant.post(f"/archive-log/{ids[0]}/delete",
                           data={"reason": "Dobbel registrering", "confirmation": "slett"}).status_code == 302
    assert "Dobbel registrering" in consultant.get("/archive-log/?status=deleted").get_data(as_text=True)
    consultant.post("/logout")
    html = login_as("leiar").get("/archive-log/?status=deleted").get_data(as_text=True)
    assert f'id="job-{ids[0]}"' not in html and "Dobbel registrering" not in html and f'id="job-{ids[1]}"' in html


def test_a_reader_who_may_not_see_every_client_cannot_filter_by_a_client_s_name(app, login_as):
    """The page hides clients' names from a reader without search_all; a filter by name would tie a child's
    name to the rows of their cases. For such a reader the filter is not offered and not applied."""
    from ppt_web.admin import service as admin
    from ppt_web.models import Role

    from .conftest import sign_in, user

    with app.app_context():
        solveig = builders.client(given_name="Solveig", family_name="Zyx")
        theirs = builders.case(client_obj=solveig).number
        other = builders.case().number
        role = db.session.scalar(select(Role).where(Role.code == "pp_radgjevar"))
        admin.set_role_permission(user("leiar"), role.id, "archive_log", True)
    reader = login_as("radgjevar2")
    page = reader.get("/archive-log/?client=solveig").get_data(as_text=True)
    assert theirs in page and other in page and 'name="client"' not in page
    assert "Solveig" not in page
    everyone = app.test_client()
    assert sign_in(everyone, "konsulent").status_code == 302
    everyone = everyone.get("/archive-log/?client=solveig").get_data(as_text=True)
    assert theirs in everyone and other not in everyone and 'name="client"' in everyone
