"""One effect per action: the same action sent N times at once (double clicks, two tabs, two people)
makes exactly one archive job, dispatch, post or log row; the others get a clear "already done"
(409, or the refusal flashed on the page), never a 500 (docs/decisions.md, "One effect per action").

Each request runs in its own thread with its own test client (and so its own app context and
database connection), all released at once by a barrier. Runs on SQLite and on PostgreSQL
(PPT_TEST_DATABASE_URL).
"""
from __future__ import annotations

import io
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import func, select, update

from ppt_web.cases import approval, posts
from ppt_web.cases import service as cases
from ppt_web.clock import today as oslo_today
from ppt_web.clock import utcnow
from ppt_web.dispatch import service as dispatch
from ppt_web.errors import Conflict
from ppt_web.extensions import db
from ppt_web.models import (
    ActivityLog,
    ArchiveJob,
    Case,
    Client,
    Dispatch,
    DispatchStatus,
    InboxItem,
    JournalPost,
    MetadataCorrection,
    Organisation,
    PostEvent,
)

from . import builders
from .conftest import sign_in, user

N = 8  # requests at once per action

# A 500 must show as a 500 here, not as an exception in the test's thread.
pytestmark = pytest.mark.app_config(PROPAGATE_EXCEPTIONS=False)

@dataclass
class Race:
    statuses: list[int] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)


def _alert(page: str, kind: str) -> str | None:
    found = re.search(rf'class="alert {kind}"[^>]*>([^<]*)<', page)
    return found.group(1).strip() if found else None



def _in_thread(call):
    """call() in a thread of its own: a request made in the test's thread shares the test's app
    context, and Flask-Login would find the first sign-in's user there and not sign the next client in."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()))
    thread.start()
    thread.join(60)
    return out[0]


def signed_in(app, username: str):
    client = app.test_client()
    response = _in_thread(lambda: sign_in(client, username).status_code)
    assert response == 302
    return client


def race(app, username: str, send: Callable, n: int = N) -> Race:
    """n signed-in clients send at the same moment; each answer is followed to the page it leads to.
    send(client, i) runs in its own thread: it may use plain values, not the test's ORM objects."""
    db.session.commit()
    db.session.expire_all()
    first = signed_in(app, username)
    cookie = first.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    clients = [first]
    for _ in range(n - 1):  # the same signed-in session in each client: sign-ins cost time, and at once are throttled
        clients.append(app.test_client())
        clients[-1].set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    start = threading.Barrier(n)
    answers: list = [None] * n

    def run(i: int) -> None:
        try:
            start.wait(60)
            response = send(clients[i], i)
            answers[i] = (response.status_code, response.get_data(as_text=True))
        except Exception as exc:  # noqa: BLE001 - counted as a server error
            answers[i] = (500, repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    result = Race()
    for status, page in answers:
        result.statuses.append(status)
        error = _alert(page, "error") or _alert(page, "info")  # info: a form sent again, led to what it made
        if status >= 500:
            result.outcomes["500"] += 1
            result.refusals[page[:300]] += 1
        elif status in (404, 409) or (error and not _alert(page, "success")):
            result.outcomes["refused"] += 1
            result.refusals[error or page[:200]] += 1
        elif status in (200, 204) and _alert(page, "success"):
            result.outcomes["done"] += 1
        else:
            result.outcomes[f"other {status}"] += 1
            body = page.split("<main", 1)[-1]
            result.refusals[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))[:300]] += 1
    return result


def said(msgid: str) -> str:
    """A message as the user reads it (the app's default language)."""
    with force_locale("nn"):
        return gettext(msgid)


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _jobs(event: str, **where) -> int:
    return _count(ArchiveJob, ArchiveJob.event == event, *[getattr(ArchiveJob, k) == v for k, v in where.items()])


def _log(action: str, object_id: int) -> int:
    return _count(ActivityLog, ActivityLog.action == action, ActivityLog.object_id == str(object_id))


def _events(kind: str, post_id: int) -> int:
    return _count(PostEvent, PostEvent.kind == kind, PostEvent.post_id == post_id)


def check(name: str, result: Race, effects: int, already: tuple[str, ...] = ()) -> None:
    """One effect, one success, the rest refused with a message, no server error."""
    print(f"\n{name}: {len(result.statuses)} at once -> effects {effects}, done {result.outcomes['done']}, "
          f"refused {result.outcomes['refused']}, 500s {result.outcomes['500']}; {dict(result.refusals)}")
    assert result.outcomes["500"] == 0, result
    assert effects == 1, result
    assert result.outcomes["done"] == 1 and result.outcomes["refused"] == len(result.statuses) - 1, result
    if already:
        assert set(result.refusals) <= {said(text) for text in already}, result.refusals


def _incoming(case=None) -> JournalPost:
    return builders.finalized_post(case or builders.case(category="follow_up"), post_type="I",
                                   correspondent="Ulstein skule", title="Tilvising", received_on=oslo_today())


def _outgoing_draft(case=None) -> JournalPost:
    return builders.post(case or builders.case(), post_type="U", correspondent="Kari Føresett",
                         title="Sakkunnig vurdering")


def _letter_to_guardian() -> JournalPost:
    case = builders.case(category="follow_up")
    return posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Brev", document_date=oslo_today(), correspondents=[posts.CorrespondentData(
            name="Kari Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
            national_id=builders.valid_national_id(901))]),
        posts.Upload(io.BytesIO(builders.make_pdf(1)), "brev.pdf"))


def test_finalize_at_once_makes_one_archive_job(app, ctx):
    post = builders.post(builders.case(category="follow_up"), correspondent="Skule")
    pid = post.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/posts/{pid}/finalize", follow_redirects=True))
    check("finalize", result, _jobs("post_finalized", post_id=post.id),
          already=("The post is finalized already.",))
    assert _log("post_finalized", post.id) == 1


def test_write_off_at_once_makes_one_avskrivning_and_keeps_the_winners_method(app, ctx):
    post = _incoming()
    methods = ["BE", "TLF", "TE", "TO"]
    pid = post.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/posts/{pid}/write-off",
                                                         data={"method": methods[i % 4]}, follow_redirects=True))
    check("write-off", result, _jobs("post_written_off", post_id=post.id),
          already=("The post is written off already.",))
    rows = [r for r in db.session.scalars(select(ActivityLog).where(ActivityLog.action == "post_written_off",
                                                                    ActivityLog.object_id == str(post.id)))]
    assert len(rows) == 1
    assert db.session.get(JournalPost, post.id).write_off_method == rows[0].detail


def test_metadata_corrections_at_once_apply_once_and_the_others_are_told_to_look_again(app, ctx):
    post = _incoming()
    today = oslo_today().isoformat()
    pid = post.id

    def correct(c, i):
        return c.post(f"/posts/{pid}/correct", data={
            "reason": f"Skrivefeil {i}", "title": f"Retta tittel {i}", "document_date": today, "received_on": today,
            "correspondents-0-name": "Ulstein skule", "version": "0"}, follow_redirects=True)

    result = race(app, "konsulent", correct)
    check("metadata correction", result, _count(MetadataCorrection, MetadataCorrection.post_id == post.id),
          already=("The post has changed meanwhile. Open it again.",))
    assert _jobs("metadata_corrected", post_id=post.id) == 1
    correction = db.session.scalar(select(MetadataCorrection).where(MetadataCorrection.post_id == post.id))
    assert correction.before["title"] == "Tilvising"


def test_a_correction_from_a_form_opened_before_another_correction_is_refused(app, ctx, login_as):
    """Not at once, one after the other: the second form still shows the values before the first
    correction, so it is refused instead of silently overwriting what the first one did."""
    post = _incoming()
    client = login_as("konsulent")
    page = client.get(f"/posts/{post.id}/correct").get_data(as_text=True)
    version = re.search(r'name="version"[^>]*value="(\d*)"', page) or re.search(r'value="(\d*)"[^>]*name="version"',
                                                                                 page)
    assert version is not None
    today = oslo_today().isoformat()
    form = {"reason": "Skrivefeil", "title": "Fyrste retting", "document_date": today, "received_on": today,
            "correspondents-0-name": "Ulstein skule", "version": version.group(1)}
    assert client.post(f"/posts/{post.id}/correct", data=form).status_code == 302
    again = client.post(f"/posts/{post.id}/correct", data={**form, "title": "Andre retting"})
    assert again.status_code == 409
    assert said("The post has changed meanwhile. Open it again.") in again.get_data(as_text=True)
    assert 'value="Fyrste retting"' in again.get_data(as_text=True)  # the form shows the values as they are now
    assert _count(MetadataCorrection, MetadataCorrection.post_id == post.id) == 1


def test_closing_a_case_at_once_makes_one_close_job(app, ctx):
    case = builders.case(category="follow_up")
    cid = case.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/cases/{cid}/close", follow_redirects=True))
    check("close case", result, _jobs("case_closed", case_id=case.id), already=("The case is closed already.",))
    assert _log("case_closed", case.id) == 1


def test_reopening_a_case_at_once_makes_one_reopen_job(app, ctx):
    case = builders.case(category="follow_up")
    cases.close_case(user("radgjevar1"), case.id)
    cid = case.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/cases/{cid}/reopen", follow_redirects=True))
    check("reopen case", result, _jobs("case_reopened", case_id=case.id), already=("The case is open already.",))


def test_sending_to_approval_at_once_asks_once(app, ctx):
    post = _outgoing_draft()
    leader = user("leiar").id
    pid = post.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/posts/{pid}/send-to-approval",
                                                         data={"approver_id": leader}, follow_redirects=True))
    check("send to approval", result, _events("sent_to_approval", post.id),
          already=("Only a draft can be sent to approval.",))


def test_approving_at_once_finalizes_once(app, ctx):
    post = _outgoing_draft()
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    pid = post.id
    result = race(app, "leiar", lambda c, i: c.post(f"/posts/{pid}/approve", data={"comment": ""},
                                                    follow_redirects=True))
    check("approve", result, _jobs("post_finalized", post_id=post.id),
          already=("The post is not waiting for approval.",))
    assert _events("approved", post.id) == 1


def test_returning_at_once_returns_once(app, ctx):
    post = _outgoing_draft()
    approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
    pid = post.id
    result = race(app, "leiar", lambda c, i: c.post(f"/posts/{pid}/return", data={"comment": "Rett dette"},
                                                    follow_redirects=True))
    check("return for changes", result, _events("returned", post.id),
          already=("The post is not waiting for approval.",))


def test_dispatching_at_once_makes_one_dispatch(app, ctx):
    post = _letter_to_guardian()
    posts.finalize(user("radgjevar1"), post.id)
    pid = post.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/dispatch/posts/{pid}", follow_redirects=True))
    check("request dispatch", result, _count(Dispatch, Dispatch.post_id == post.id))
    assert _log("post_dispatch_requested", post.id) == 1


def test_retrying_a_failed_dispatch_at_once_retries_once(app, ctx):
    post = _letter_to_guardian()
    posts.finalize(user("radgjevar1"), post.id)
    row = dispatch.request_dispatch(user("radgjevar1"), post.id)[0]
    db.session.execute(update(Dispatch).where(Dispatch.id == row.id).values(
        status=DispatchStatus.FAILED, outcome_unknown=False, message="AVVIST", updated_at=utcnow()))
    db.session.commit()
    rid = row.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/dispatch/{rid}/retry", follow_redirects=True))
    check("retry dispatch", result, _log("dispatch_retried", post.id),
          already=("Only a failed dispatch can be retried.",))
    assert _count(Dispatch, Dispatch.post_id == post.id) == 2


def test_deleting_a_post_at_once_deletes_and_logs_once(app, ctx):
    post = builders.post(builders.case(category="follow_up"), title="Feilregistrert")
    pid = post.id
    result = race(app, "konsulent", lambda c, i: c.post(f"/posts/{pid}/delete", data={"reason": "Feil klient"},
                                                        follow_redirects=True))
    check("delete post", result, _log("post_deleted", pid),
          already=("The journal post is deleted already.", "We could not find what you asked for."))


# Create forms: the same rendered form (one token) sent N times at once makes one object; the other
# sendings land on it with this message.
MADE_ALREADY = "This form was sent already. Here is what it made."


def _token(client, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="form_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="form_token"', page)
    assert found is not None, "the form has a form_token"
    return found.group(1)


def _token_for(app, username: str, url: str) -> str:
    client = signed_in(app, username)
    return _in_thread(lambda: _token(client, url))


def test_a_new_post_form_sent_at_once_makes_one_post_and_leads_everyone_to_it(app, ctx):
    case = builders.case(category="follow_up")
    token = _token_for(app, "radgjevar1", f"/cases/{case.id}/posts/new")
    before = _count(JournalPost, JournalPost.case_id == case.id)
    cid = case.id
    result = race(app, "radgjevar1", lambda c, i: c.post(f"/cases/{cid}/posts/new", data={
        "post_type": "N", "title": "Notat frå møte", "form_token": token}, follow_redirects=True))
    check("new post", result, _count(JournalPost, JournalPost.case_id == case.id) - before, already=(MADE_ALREADY,))


def test_a_new_case_form_sent_at_once_makes_one_case(app, ctx):
    client_obj = builders.client()
    token = _token_for(app, "konsulent", "/cases/new")
    before = _count(Case)
    handler = user("radgjevar1").id
    client_id = client_obj.id
    result = race(app, "konsulent", lambda c, i: c.post("/cases/new", data={
        "kind": "person", "category": "follow_up", "title": "Oppfølging", "client_id": client_id,
        "handler_id": handler, "form_token": token}, follow_redirects=True))
    check("new case", result, _count(Case) - before, already=(MADE_ALREADY,))


def test_a_new_client_form_sent_at_once_makes_one_client(app, ctx):
    token = _token_for(app, "konsulent", "/clients/new")
    before = _count(Client)
    handler = user("radgjevar1").id
    result = race(app, "konsulent", lambda c, i: c.post("/clients/new", data={
        "national_id": builders.valid_national_id(4242), "given_name": "Ola", "family_name": "Dobbel",
        "handler_id": handler, "form_token": token}, follow_redirects=True))
    check("new client", result, _count(Client) - before, already=(MADE_ALREADY,))


def test_a_new_organisation_form_sent_at_once_makes_one_organisation(app, ctx):
    token = _token_for(app, "konsulent", "/organisations")
    before = _count(Organisation)
    result = race(app, "konsulent", lambda c, i: c.post("/organisations", data={
        "name": "Dobbel skule", "kind": "school", "form_token": token}, follow_redirects=True))
    check("new organisation", result, _count(Organisation) - before, already=(MADE_ALREADY,))


def test_a_create_form_sent_again_later_leads_to_what_the_first_sending_made(app, ctx, login_as):
    case = builders.case(category="follow_up")
    client = login_as("radgjevar1")
    token = _token(client, f"/cases/{case.id}/posts/new")
    form = {"post_type": "N", "title": "Notat", "form_token": token}
    first = client.post(f"/cases/{case.id}/posts/new", data=form)
    assert first.status_code == 302
    again = client.post(f"/cases/{case.id}/posts/new", data=form)
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert said(MADE_ALREADY) in page
    assert _count(JournalPost, JournalPost.case_id == case.id) == 1
    htmx = client.post(f"/cases/{case.id}/posts/new", data=form, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == first.headers["Location"]


def test_two_renderings_of_a_create_form_are_two_objects(app, ctx, login_as):
    """The token is made when the form is shown: registering two posts on purpose still works."""
    case = builders.case(category="follow_up")
    client = login_as("radgjevar1")
    for title in ("Fyrste", "Andre"):
        token = _token(client, f"/cases/{case.id}/posts/new")
        assert client.post(f"/cases/{case.id}/posts/new", data={"post_type": "N", "title": title,
                                                                "form_token": token}).status_code == 302
    assert _count(JournalPost, JournalPost.case_id == case.id) == 2



def test_an_upload_form_sent_at_once_makes_one_inbox_item(app, ctx):
    token = _token_for(app, "sekretaer", "/post-registration/")
    before = _count(InboxItem)
    pdf = builders.make_pdf(2, tag="dobbel-opplasting")
    result = race(app, "sekretaer", lambda c, i: c.post("/post-registration/upload", data={
        "file": (io.BytesIO(pdf), "brev.pdf"), "form_token": token}, content_type="multipart/form-data",
        follow_redirects=True))
    check("upload to the inbox", result, _count(InboxItem) - before, already=(MADE_ALREADY,))


def test_a_post_registered_while_the_case_closes_never_leaves_a_draft_in_a_closed_case(app, ctx, monkeypatch):
    """The close reads the case's open posts, and a post is registered before the close writes: the
    close must see the draft (and refuse), or the post must see the closed case (and refuse)."""
    case = builders.case(category="follow_up")
    case_id, outcome = case.id, {}

    def register():
        with app.app_context():
            try:
                outcome["post"] = posts.create_post(user("radgjevar1"), case_id, posts.PostData(
                    post_type="N", title="Notat skrive medan saka vart avslutta")).id
            except Conflict as exc:
                outcome["post"] = exc
            finally:
                db.session.remove()

    original, threads = cases.snapshot, []

    def snapshot_while_a_post_is_registered(found):
        if not threads:  # between the close's check of open posts and its write
            threads.append(threading.Thread(target=register))
            threads[0].start()
            threads[0].join(2)
        return original(found)

    monkeypatch.setattr(cases, "snapshot", snapshot_while_a_post_is_registered)
    try:
        cases.close_case(user("radgjevar1"), case_id)
    except Conflict:
        pass
    threads[0].join(60)
    db.session.expire_all()
    closed = db.session.get(Case, case_id).status == "closed"
    drafts = _count(JournalPost, JournalPost.case_id == case_id, JournalPost.status == "draft")
    print(f"\nclose and register at once: closed {closed}, drafts {drafts}, post {outcome.get('post')!r}")
    assert not (closed and drafts), "a closed case with a draft"
    assert closed or drafts == 1
