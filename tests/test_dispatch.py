"""Dispatch of finalized outgoing posts against the local SvarUt v3: each recipient exactly once,
`dispatched` only after confirmation, failures visible and retryable (SPEC §6)."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from ppt_web.cases import approval, posts
from ppt_web.clock import today as oslo_today
from ppt_web.clock import utcnow
from ppt_web.dispatch import expedition
from ppt_web.dispatch import service as dispatch
from ppt_web.errors import Conflict, Invalid
from ppt_web.extensions import db
from ppt_web.models import Dispatch, DispatchStatus, JournalPost, Notification, Organisation, OrgKind, PostStatus
from ppt_web.outbound.folder import FolderAdapter
from ppt_web.outbound.svarut import LocalJwtTokenProvider, SvarUtAdapter

from . import builders
from .conftest import user
from .helpers import ROOT, elsewhere, worker_env
from .svarut_server import SvarUtServer, find_ks_svarut, make_token_keys

KONTO = "5b1c7a1e-0c6f-4c59-9a4b-3f5c1e7d2a10"
INTEGRATION_ID = "8d2f6a0e-2b1c-4e7a-9f3d-6c5b4a392817"
PASSWORD = "integrasjon-passord"
OUR_ORG = "974760673"
SCHOOL_ORG = "123456785"

pytestmark = pytest.mark.app_config(PPT_DISPATCH_BACKOFF_SECONDS=0)


@pytest.fixture(scope="module")
def token_keys():
    return make_token_keys()


@pytest.fixture
def server(token_keys):
    if find_ks_svarut() is None:
        assert not os.environ.get("CI"), "CI lays shared/ beside the checkout"
        pytest.skip("no shared/standards/ks-svarut beside this checkout")
    with SvarUtServer(token_keys[1], INTEGRATION_ID, PASSWORD, {KONTO}, consumer_org=OUR_ORG) as running:
        yield running


@pytest.fixture
def adapter(server, token_keys):
    return SvarUtAdapter(server.url, KONTO, INTEGRATION_ID, PASSWORD, LocalJwtTokenProvider(token_keys[0], OUR_ORG),
                         public_key_pem=server.server_cert_pem, timeout=3)


def letter(category: str = "expert_assessment", approve: bool = True, to_school: bool = True):
    """A finalized outgoing letter to a guardian (and a school), approved by the leader when it must be."""
    case = builders.case(category=category)
    school = db.session.scalar(select(Organisation).where(Organisation.org_number == SCHOOL_ORG))
    if school is None:
        school = Organisation(name="Nordby skule", name_lower="nordby skule", org_number=SCHOOL_ORG,
                              kind=OrgKind.SCHOOL, address="Skulevegen 2, 6065 Ulsteinvik")
        db.session.add(school)
        db.session.commit()
    recipients = [posts.CorrespondentData(name="Kari Føresett", address="Heimvegen 3, 6065 Ulsteinvik",
                                          national_id=builders.valid_national_id(901))]
    if to_school:
        recipients.append(posts.CorrespondentData(organisation_id=school.id))
    post = posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Sakkunnig vurdering", document_date=oslo_today(), correspondents=recipients),
        posts.Upload(io.BytesIO(builders.make_pdf(2)), "vurdering.pdf"))
    if approve:
        approval.send_for_approval(user("radgjevar1"), post.id, user("leiar").id)
        approval.approve(user("leiar"), post.id)
    else:
        posts.finalize(user("radgjevar1"), post.id)
    return db.session.get(JournalPost, post.id)


def rows(post) -> list[Dispatch]:
    db.session.expire_all()
    return list(db.session.scalars(select(Dispatch).where(Dispatch.post_id == post.id).order_by(Dispatch.id)))


def run_all(adapter) -> None:
    for row in db.session.scalars(select(Dispatch.id).where(Dispatch.status == DispatchStatus.PENDING)).all():
        dispatch.process(row, adapter)


def test_each_recipient_gets_it_once_and_the_post_is_dispatched_only_when_confirmed(ctx, server, adapter):
    post = letter()
    made = dispatch.request_dispatch(user("radgjevar1"), post.id)
    assert [(r.recipient_kind, r.status) for r in made] == [("person", DispatchStatus.PENDING),
                                                           ("organisation", DispatchStatus.PENDING)]
    run_all(adapter)
    got = rows(post)
    assert [r.status for r in got] == [DispatchStatus.SENT, DispatchStatus.SENT]
    for row in got:
        (shipment,) = server.by_external_ref(row.external_ref)
        assert shipment["files"]["vurdering.pdf"].startswith(b"%PDF")
    person, school = (server.by_external_ref(r.external_ref)[0] for r in got)
    assert person["type"] == "person" and person["json"]["sikkerhetsniva"] == "HOYESTE" and person["json"]["kryptert"]
    assert school["type"] == "organisasjon" and school["json"]["taushetsbelagtPost"] is True
    assert db.session.get(JournalPost, post.id).status == PostStatus.FINALIZED  # sent is not delivered

    server.set_status(got[0].forsendelse_id, "LEST")
    dispatch.follow_statuses(adapter)
    assert db.session.get(JournalPost, post.id).status == PostStatus.FINALIZED  # one of two confirmed
    server.set_status(got[1].forsendelse_id, "LEVERT_SDP")
    dispatch.follow_statuses(adapter)
    post = db.session.get(JournalPost, post.id)
    assert post.status == PostStatus.DISPATCHED and [r.status for r in rows(post)] == [DispatchStatus.CONFIRMED] * 2
    assert [e.kind for e in post.events][-1] == "dispatched"
    run_all(adapter)  # nothing pending: nothing sent again
    assert all(len(server.by_external_ref(r.external_ref)) == 1 for r in rows(post))
    with pytest.raises(Conflict):  # never again, not even its metadata
        posts.correct_metadata(user("konsulent"), post.id, "Feil tittel",
                               posts.PostData(post_type="U", title="Anna", document_date=oslo_today()))


def test_transient_failures_then_success_send_once(ctx, server, adapter):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    server.mode = "server_error"
    run_all(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.PENDING and row.outcome_unknown and row.attempts == 1
    server.mode = "ok"
    run_all(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.SENT and row.attempts == 2
    assert len(server.by_external_ref(row.external_ref)) == 1


def test_a_lost_answer_is_looked_up_before_anything_is_sent_again(ctx, server, adapter):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    server.mode, server.stall_seconds = "timeout_after_store", 5
    run_all(adapter)  # the server stored it, but the answer never came
    (row,) = rows(post)
    assert row.status == DispatchStatus.PENDING and row.outcome_unknown
    server.mode = "ok"
    run_all(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.SENT and "eksternReferanse" in row.message
    assert len(server.by_external_ref(row.external_ref)) == 1


def test_a_worker_killed_after_sending_does_not_send_twice(ctx, server, adapter):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)

    class DiesAfterSending:
        def send(self, shipment):
            adapter.send(shipment)
            raise SystemExit("worker killed between the answer and the commit")

        def lookup(self, ref):
            return adapter.lookup(ref)

    with pytest.raises(SystemExit):
        run_all(DiesAfterSending())
    db.session.rollback()
    (row,) = rows(post)
    assert row.status == DispatchStatus.PENDING and row.outcome_unknown and row.lease_until is not None
    db.session.execute(update(Dispatch).values(lease_until=utcnow() - timedelta(seconds=1)))  # the lease runs out
    db.session.commit()
    dispatch.sweep(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.SENT
    assert len(server.by_external_ref(row.external_ref)) == 1


def _another_attempt_takes_over(app, dispatch_id: int, adapter, server) -> None:
    """What happens while a worker is paused past its lease (a stopped VM): the lease runs out, another
    worker claims the dispatch, looks it up, sends it, and SvarUt's status confirms it."""
    def takes_over() -> str:
        db.session.execute(update(Dispatch).where(Dispatch.id == dispatch_id)
                           .values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        outcome = dispatch.process(dispatch_id, adapter)
        server.set_status(db.session.get_one(Dispatch, dispatch_id).forsendelse_id, "LEST")
        dispatch.follow_statuses(adapter)
        return outcome

    assert elsewhere(app, takes_over) == "sent"


class _Paused:
    """An adapter whose worker is paused past its lease in the look-up or in the send."""

    def __init__(self, adapter, pause) -> None:
        self.adapter, self.pause = adapter, pause

    def lookup(self, ref):
        found = self.adapter.lookup(ref)
        if self.pause == "lookup":
            self.pause = None
            self.paused()
        return found

    def send(self, shipment):
        if self.pause == "send":
            self.pause = None
            self.paused()
        return self.adapter.send(shipment)


@pytest.mark.parametrize("where", ["lookup", "send"])
def test_a_worker_paused_past_its_lease_leaves_the_dispatch_to_the_attempt_that_took_over(app, ctx, server, adapter,
                                                                                          where):
    """Paused in the look-up, it sends nothing; paused in the send, its letter goes out (SvarUt had nothing
    when the other attempt looked), but it writes nothing over the other's outcome: the dispatch stays
    confirmed with the other's shipment, and no failure is told."""
    post = letter(to_school=False)
    (made,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    paused = _Paused(adapter, where)
    paused.paused = lambda: _another_attempt_takes_over(app, made.id, adapter, server)
    assert dispatch.process(made.id, paused) == "claim lost"
    (row,) = rows(post)
    shipments = server.by_external_ref(row.external_ref)
    assert row.status == DispatchStatus.CONFIRMED and row.forsendelse_id == shipments[0]["id"]
    assert len(shipments) == (1 if where == "lookup" else 2)
    assert db.session.get(JournalPost, post.id).status == PostStatus.DISPATCHED
    assert not [e for e in post.events if e.kind == "dispatch_failed"]


def test_a_failure_is_not_told_to_one_who_asked_for_the_dispatch_and_may_no_longer_see_the_case(ctx, server,
                                                                                                 adapter):
    """The notice names the post and the recipient: a co-handler who asked for the dispatch and was taken
    off the case since does not get it; the case's handler does."""
    from ppt_web.cases import service as cases

    post = letter(to_school=False)
    cases.add_cohandler(user("radgjevar1"), post.case_id, user("radgjevar2").id)
    dispatch.request_dispatch(user("radgjevar2"), post.id)
    cases.remove_cohandler(user("radgjevar1"), post.case_id, user("radgjevar2").id)
    server.mode = "reject"
    run_all(adapter)

    def told(username: str) -> list[str]:
        return [n.text for n in db.session.scalars(select(Notification).where(
            Notification.user_id == user(username).id)) if "Kari Føresett" in n.text]

    assert told("radgjevar2") == [] and len(told("radgjevar1")) == 1


@pytest.mark.parametrize("how", ["reject", "AVVIST", "IKKE_LEVERT"])
def test_a_permanent_failure_is_visible_notified_and_retryable(ctx, server, adapter, how):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    if how == "reject":
        server.mode = "reject"
        run_all(adapter)
    else:
        run_all(adapter)
        server.set_status(rows(post)[0].forsendelse_id, how)
        dispatch.follow_statuses(adapter)
    (failed,) = rows(post)
    assert failed.status == DispatchStatus.FAILED and failed.message
    assert [d.id for d in dispatch.failures(user("radgjevar1"))] == [failed.id]
    texts = [n.text for n in db.session.scalars(select(Notification).where(
        Notification.user_id == user("radgjevar1").id))]
    assert any("Kari Føresett" in t for t in texts)
    assert builders.valid_national_id(901) not in failed.message
    assert db.session.get(JournalPost, post.id).status == PostStatus.FINALIZED
    server.mode = "ok"
    again = dispatch.retry(user("radgjevar1"), failed.id)
    assert again.external_ref != failed.external_ref  # the refused one was not delivered: a new shipment
    run_all(adapter)
    old, new = rows(post)
    assert old.status == DispatchStatus.REPLACED and new.status == DispatchStatus.SENT
    assert dispatch.failures(user("radgjevar1")) == []


def test_dispatch_is_refused_for_what_must_not_go_out(ctx):
    with pytest.raises(Conflict):  # an expert assessment cannot even be finalized without approval
        letter(approve=False, to_school=False)
    db.session.rollback()
    draft = builders.post(builders.case(category="follow_up"), post_type="U", correspondent="Føresette")
    with pytest.raises(Conflict):
        dispatch.request_dispatch(user("radgjevar1"), draft.id)
    no_address = builders.finalized_post(builders.case(category="follow_up"), post_type="U",
                                         correspondent="Føresette")  # a name only
    with pytest.raises(Invalid) as refused:
        dispatch.request_dispatch(user("radgjevar1"), no_address.id)
    assert "Føresette" in str(refused.value.message)
    assert db.session.scalar(select(Dispatch)) is None
    ok = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), ok.id)
    with pytest.raises(Conflict):  # once
        dispatch.request_dispatch(user("radgjevar1"), ok.id)


def test_the_folder_adapter_is_the_zero_setup_default(app, ctx):
    post = letter()
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    outcome = dispatch.sweep()
    assert outcome.get("sent") == 2
    assert isinstance(dispatch.outbound_adapter(), FolderAdapter)
    post = db.session.get(JournalPost, post.id)
    assert post.status == PostStatus.DISPATCHED  # a written shipment counts as delivered (folder adapter)
    written = sorted(p.name for p in (Path(app.config["PPT_SVARUT_DIR"]) / "ut").iterdir())
    assert written == sorted(r.external_ref for r in rows(post))


def test_a_structured_address_reaches_svarut_whole(ctx):
    """Two street lines and a country abroad go to SvarUt as adresselinje1/2 and landkode, and a
    foreign address without a postal code is not refused."""
    from ppt_web.outbound.svarut import forsendelse_json

    case = builders.case(category="follow_up")
    post = posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Brev", document_date=oslo_today(), correspondents=[posts.CorrespondentData(
            name="Kari Føresett", address="c/o Nilsson\nStorgatan 5", city="Göteborg", country="SE",
            national_id=builders.valid_national_id(903))]),
        posts.Upload(io.BytesIO(builders.make_pdf()), "brev.pdf"))
    posts.finalize(user("radgjevar1"), post.id)
    (row,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    assert (row.address_line1, row.address_line2, row.postal_code, row.city, row.country) == \
        ("c/o Nilsson", "Storgatan 5", "", "Göteborg", "SE")
    sent = forsendelse_json(dispatch._shipment_for(db.session.get(JournalPost, post.id), dispatch._recipient(row),
                                                   row.external_ref, with_files=False))
    assert sent["mottaker"]["adresse"] == {"adresselinje1": "c/o Nilsson", "adresselinje2": "Storgatan 5",
                                           "poststed": "Göteborg", "landkode": "SE"}


@pytest.mark.slow
@pytest.mark.app_config(PPT_QUEUE_NAME=f"dispatch-kill-{uuid.uuid4().hex[:8]}")
def test_a_real_worker_killed_mid_dispatch_does_not_send_twice(app, ctx, server, adapter, token_keys, tmp_path):
    """SIGKILL the worker while SvarUt holds the letter and has not answered; the next attempt adopts it."""
    key = tmp_path / "token-key.pem"
    key.write_bytes(token_keys[0])
    post = letter(to_school=False)
    server.mode, server.stall_seconds = "timeout_after_store", 60
    dispatch.request_dispatch(user("radgjevar1"), post.id)  # hands the job to the worker's queue
    env = {**worker_env(app), "PPT_OUTBOUND_BACKEND": "svarut", "PPT_SVARUT_URL": server.url,
           "PPT_SVARUT_KONTO": KONTO, "PPT_SVARUT_INTEGRATION_ID": INTEGRATION_ID,
           "PPT_SVARUT_INTEGRATION_PASSWORD": PASSWORD, "PPT_SVARUT_TOKEN_PROVIDER": "tests.svarut_tokens:provider",
           "PPT_TEST_SVARUT_TOKEN_KEY": str(key), "PPT_TEST_SVARUT_ORG": OUR_ORG, "PPT_DISPATCH_SECONDS": "1"}
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.shipments:
            time.sleep(0.1)
        assert server.shipments, "the worker never reached SvarUt"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    (row,) = rows(post)
    assert row.status == DispatchStatus.PENDING and row.outcome_unknown  # died before it knew
    db.session.execute(update(Dispatch).values(lease_until=utcnow() - timedelta(seconds=1)))  # the lease runs out
    db.session.commit()
    server.mode = "ok"
    dispatch.sweep(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.SENT and len(server.by_external_ref(row.external_ref)) == 1
    assert len(server.shipments) == 1


def test_a_post_with_a_failed_recipient_is_not_dispatched_anew_and_a_retry_uses_the_corrected_address(
        ctx, server, adapter):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    server.mode = "reject"
    run_all(adapter)
    (failed,) = rows(post)
    assert failed.status == DispatchStatus.FAILED
    with pytest.raises(Conflict):  # not a second, separate dispatch: the failure is retried
        dispatch.request_dispatch(user("radgjevar1"), post.id)
    # The consultant corrects the guardian's address on the finalized post, then retries.
    posts.correct_metadata(user("konsulent"), post.id, "Ny adresse", posts.PostData(
        post_type="U", title=post.title, document_date=post.document_date, correspondents=[
            posts.CorrespondentData(name="Kari Føresett", address="Nyvegen 9, 6060 Hareid",
                                    national_id=builders.valid_national_id(901))]))
    server.mode = "ok"
    again = dispatch.retry(user("radgjevar1"), failed.id)
    assert (again.address_line1, again.postal_code, again.city) == ("Nyvegen 9", "6060", "Hareid")
    with pytest.raises(Conflict):  # the same failure retried twice: one new attempt
        dispatch.retry(user("radgjevar1"), failed.id)
    run_all(adapter)
    (shipment,) = server.by_external_ref(again.external_ref)
    assert shipment["json"]["mottaker"]["adresse"]["postnummer"] == "6060"
    assert [r.status for r in rows(post)] == [DispatchStatus.REPLACED, DispatchStatus.SENT]


def test_manuelt_handtert_is_an_end_state_never_sent_again(ctx, server, adapter):
    """Someone at SvarUt handled the letter by hand: it may have arrived, so no retry and no new shipment."""
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    run_all(adapter)
    (row,) = rows(post)
    server.set_status(row.forsendelse_id, "MANUELT_HANDTERT")
    dispatch.follow_statuses(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.MANUAL and row.raw_status == "MANUELT_HANDTERT"
    assert dispatch.retry_refusal(user("radgjevar1"), row) is not None
    with pytest.raises(Conflict) as refused:
        dispatch.retry(user("radgjevar1"), row.id)
    assert "SvarUt" in str(refused.value.message)
    with pytest.raises(Conflict):
        dispatch.request_dispatch(user("radgjevar1"), post.id)
    run_all(adapter)
    dispatch.sweep(adapter)
    (row,) = rows(post)
    assert row.status == DispatchStatus.MANUAL and len(server.shipments) == 1
    assert len(server.by_external_ref(row.external_ref)) == 1
    post = db.session.get(JournalPost, post.id)
    assert post.status == PostStatus.FINALIZED and post.expedited_on is None  # not known to have gone out
    # It waits for a person in the dispatch list, marked as such, and the handler is told.
    assert [d.id for d in dispatch.failures(user("radgjevar1"))] == [row.id]
    assert any("SvarUt" in n.text and post.number in n.text for n in db.session.scalars(
        select(Notification).where(Notification.user_id == user("radgjevar1").id)))
    # Found to have gone out on paper: recorded, and the list is clear.
    expedition.record_paper(user("radgjevar1"), post.id, oslo_today())
    assert dispatch.failures(user("radgjevar1")) == [] and len(server.shipments) == 1


def test_the_pages_show_a_manually_handled_dispatch_without_retry(app, ctx, login_as):
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    status = Path(app.config["PPT_SVARUT_DIR"]) / "status"
    status.mkdir(parents=True, exist_ok=True)
    (row,) = rows(post)
    (status / f"{row.external_ref}.json").write_text('{"status": "MANUELT_HANDTERT"}')
    dispatch.sweep()
    (row,) = rows(post)
    assert row.status == DispatchStatus.MANUAL
    browser = login_as("radgjevar1")
    for page in (f"/posts/{post.id}", "/dispatch/failures"):
        html = browser.get(page).get_data(as_text=True)
        assert f'data-dispatch="{row.id}"' in html and "badge dispatch-manual" in html, page
        assert f"/dispatch/{row.id}/retry" not in html, page
    assert browser.post(f"/dispatch/{row.id}/retry").status_code == 302
    assert len(rows(post)) == 1


def test_a_status_answer_for_a_letter_retried_meanwhile_changes_nothing(app, ctx, server, adapter):
    """Two sweeps overlap (a status look-up takes long): while one waits for SvarUt, the other marks the letter
    failed and the handler retries it. The first one's late answer leaves the retried letter as it is: no second
    failure, no second notice, nothing back on the failed list (and no second shipment on the next retry)."""
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    run_all(adapter)
    (row,) = rows(post)
    server.set_status(row.forsendelse_id, "IKKE_LEVERT")
    real, inside = adapter.statuses, []

    def statuses(ids):
        answer = real(ids)
        if not inside:
            inside.append(True)
            with app.app_context():  # the other sweep, and the handler, with sessions of their own
                dispatch.follow_statuses(adapter)
                again = dispatch.retry(user("radgjevar1"), row.id)
                assert dispatch.process(again.id, adapter) == "sent"
        return answer

    adapter.statuses = statuses
    dispatch.follow_statuses(adapter)
    old, new = rows(post)
    assert (old.status, new.status) == (DispatchStatus.REPLACED, DispatchStatus.SENT)
    assert dispatch.failures(user("radgjevar1")) == []
    notices = [n.text for n in db.session.scalars(select(Notification).where(
        Notification.user_id == user("radgjevar1").id)) if "Kari Føresett" in n.text]
    assert len(notices) == 1


def test_no_database_transaction_is_held_while_svarut_answers(ctx, server, adapter):
    """A look-up, an upload or a status question may take minutes: the worker holds no transaction (nor a
    connection) meanwhile, which would stall its forks and, on PostgreSQL, sit idle in transaction."""
    post = letter(to_school=False)
    dispatch.request_dispatch(user("radgjevar1"), post.id)
    held = []
    for name in ("lookup", "send", "statuses"):
        real = getattr(adapter, name)

        def watched(*args, _real=real, _name=name):
            held.append((_name, db.session().in_transaction()))
            return _real(*args)

        setattr(adapter, name, watched)
    run_all(adapter)
    dispatch.follow_statuses(adapter)
    assert held == [("lookup", False), ("send", False), ("statuses", False)]
    assert [r.status for r in rows(post)] == [DispatchStatus.SENT]


@pytest.mark.app_config(PPT_QUEUE_NAME=f"dispatch-{uuid.uuid4().hex[:8]}")
def test_the_immediate_send_has_time_for_a_large_upload(ctx):
    """RQ's default limit of 180 s cut a large letter's upload short (SvarUt's own limit is 16 minutes)."""
    from ppt_web.queue import get_queue

    post = letter(to_school=False)
    get_queue().empty()
    (row,) = dispatch.request_dispatch(user("radgjevar1"), post.id)
    (job,) = [get_queue().fetch_job(job_id) for job_id in get_queue().job_ids]
    assert job.args == (row.id,) and job.timeout == dispatch.SEND_TIMEOUT > 16 * 60
