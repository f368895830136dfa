"""Digital mail into the inbox: SvarInn V2 against the local test server, and the folder stand-in.

Store first, then acknowledge; a permanent technical fault is FEILET with the reason and a
kept, visible "rejected by the system" row; a repeated item is recognised by its SvarInn id. An
envelope our own key does not open is left waiting, with one alert per item.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from ppt_web.extensions import db
from ppt_web.inbound.folder import FolderSource, write_example
from ppt_web.inbound.svarinn import SvarInnSource
from ppt_web.models import InboxItem, InboxSource, InboxStatus
from ppt_web.postreg import intake, mail_intake

from . import builders
from .conftest import user, without_post_registration
from .helpers import find_ks_testdata
from .svarinn_server import SvarInnServer, _encrypted, make_key_and_cert, zip_files

USER, PASSWORD = "ppt-mottak", "test-passord"


@pytest.fixture(scope="module")
def keys():
    return make_key_and_cert()


@pytest.fixture
def server(keys):
    with SvarInnServer(keys[1], username=USER, password=PASSWORD) as running:
        yield running


@pytest.fixture
def source(server, keys):
    return SvarInnSource(server.url, USER, PASSWORD, keys[0], timeout=10)


def inbox() -> list[InboxItem]:
    db.session.expire_all()
    return list(db.session.scalars(select(InboxItem).order_by(InboxItem.id)))


def pdf_files(name: str = "brev.pdf", pages: int = 1) -> dict[str, bytes]:
    return {name: builders.make_pdf(pages)}


def test_items_are_stored_with_their_metadata_then_acknowledged(ctx, server, source):
    first = server.add(files=pdf_files("tilvising.pdf", pages=2))
    second = server.add(files=pdf_files())
    counts = mail_intake.poll_inbound(source)
    assert counts["received"] == 2
    items = inbox()
    assert [(i.source, i.status, i.svarinn_id) for i in items] == [
        (InboxSource.SVARINN, InboxStatus.NEW, first), (InboxSource.SVARINN, InboxStatus.NEW, second)]
    assert items[0].page_count == 2 and items[0].filename == "tilvising.pdf"
    meta = items[0].meta
    assert meta["title"] and meta["sender_name"] and meta["file"] == "tilvising.pdf"
    assert server.acknowledged == {first, second} and not server.failed
    assert mail_intake.poll_inbound(source).get("received", 0) == 0 and len(inbox()) == 2


def test_more_than_two_hundred_waiting_are_all_taken_in_one_pass(ctx, server, source):
    ids = {server.add(files=pdf_files(f"brev-{n}.pdf")) for n in range(205)}
    counts = mail_intake.poll_inbound(source)
    assert counts["received"] == 205
    assert {i.svarinn_id for i in inbox()} == ids and len(inbox()) == 205
    assert server.acknowledged == ids and server.waiting() == []


@pytest.mark.parametrize("fault, reason", [("hash_mismatch", "hash_mismatch"), ("truncated", "decrypt_failed"),
                                           ("bad_metadata", "bad_metadata")])
def test_a_permanent_fault_is_feilet_with_the_reason_and_kept_visible(app, ctx, server, source, fault, reason):
    bad = server.add(files=pdf_files(), fault=fault)
    good = server.add(files=pdf_files())
    counts = mail_intake.poll_inbound(source)
    assert counts["refused"] == 1 and counts["received"] == 1
    refused, received = inbox()
    assert refused.status == InboxStatus.SYSTEM_REJECTED and refused.reject_code == reason
    assert refused.svarinn_id == bad and refused.reject_reason
    assert received.svarinn_id == good and received.status == InboxStatus.NEW
    assert set(server.failed) == {bad} and server.failed[bad]["permanent"] is True
    assert reason in server.failed[bad]["feilmelding"]
    assert server.acknowledged == {good}
    if fault != "bad_metadata":  # what was downloaded is kept; bad metadata is refused before any download
        kept = Path(app.instance_path) / "quarantine" / refused.quarantine_name
        assert kept.read_bytes()
    # Nothing is lost: the row stays in the open list until someone has dealt with it.
    from ppt_web.postreg import service


    assert refused.id in {i.id for i in service.inbox(user("sekretaer"), "open")["items"]}


def test_a_crash_between_storing_and_acknowledging_stores_once(ctx, server, source):
    sent = server.add(files=pdf_files())

    class CrashingAck:
        def __init__(self, inner):
            self.inner = inner

        def fetch(self):
            return self.inner.fetch()

        def acknowledge(self, message_id):
            raise ConnectionError("the worker died before MOTTATT went out")

        def fail(self, *args):
            return self.inner.fail(*args)

    mail_intake.poll_inbound(CrashingAck(source))
    assert len(inbox()) == 1 and server.acknowledged == set()
    counts = mail_intake.poll_inbound(source)  # the item comes again
    assert counts["repeated"] == 1
    assert len(inbox()) == 1 and server.acknowledged == {sent}


def test_a_download_error_is_tried_again_later_and_changes_nothing(ctx, server, source):
    sent = server.add(files=pdf_files(), fault="download_error")
    counts = mail_intake.poll_inbound(source)
    assert counts["transient"] == 1
    assert inbox() == [] and not server.failed and sent in {m["id"] for m in server.waiting()}


def test_wrong_credentials_take_nothing(ctx, server, keys):
    server.add(files=pdf_files())
    counts = mail_intake.poll_inbound(SvarInnSource(server.url, USER, "feil-passord", keys[0], timeout=5))
    assert counts["unavailable"] == 1 and inbox() == [] and server.acknowledged == set()


def test_ks_example_with_a_pdf_and_a_text_file(ctx, server):
    ks = find_ks_testdata()
    if ks is None:
        pytest.skip("no shared/standards/ks-svarut beside this checkout")
    data = ks / "testdata"
    [meta] = json.loads((data / "svarinn-v2-forsendelse.example.json").read_text())
    server.add(meta, envelope=(data / "dokumenter.crypt").read_bytes())
    ks_source = SvarInnSource(server.url, USER, PASSWORD, (data / "sp-key.pem").read_bytes(), timeout=10)
    mail_intake.poll_inbound(ks_source)
    by_file = {i.meta["file"]: i for i in inbox()}
    assert by_file["small.pdf"].status == InboxStatus.NEW
    assert by_file["small.pdf"].meta["sender_case_ref"] == "2005/648677"
    assert by_file["text.txt"].status == InboxStatus.SYSTEM_REJECTED and by_file["text.txt"].reject_code == "not_pdf"
    assert server.acknowledged == {meta["id"]}  # technically received; the text file is a matter for people


def test_the_folder_stand_in_is_the_zero_setup_default(app, ctx):
    from ppt_web.cli import init_intake  # noqa: F401  (the demo-mail command is tested through the CLI)

    result = app.test_cli_runner().invoke(args=["demo-mail", "--title", "Tilvising frå helsestasjonen"])
    assert result.exit_code == 0, result.output
    counts = mail_intake.poll_inbound()
    assert counts["received"] == 1
    (item,) = inbox()
    assert item.meta["title"] == "Tilvising frå helsestasjonen" and item.status == InboxStatus.NEW
    root = Path(app.config["PPT_SVARINN_DIR"])
    assert not any((root / "inn").iterdir()) and len(list((root / "mottatt").iterdir())) == 1
    assert isinstance(mail_intake.inbound_source(), FolderSource)


def test_folder_items_without_a_usable_id_each_get_a_row(app, ctx):
    root = Path(app.config["PPT_SVARINN_DIR"]) / "inn"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "forsendelse.json").write_text("{ not json")
    counts = mail_intake.poll_inbound()
    assert counts["refused"] == 2
    refused = inbox()
    assert len(refused) == 2 and all(i.status == InboxStatus.SYSTEM_REJECTED for i in refused)


def alerts() -> list:
    from ppt_web.models import ActivityLog, Notification

    db.session.expire_all()
    return (list(db.session.scalars(select(ActivityLog).where(ActivityLog.action == "svarinn_undecryptable"))),
            list(db.session.scalars(select(Notification).where(Notification.text.contains("PPT_SVARINN_KEY")))))


@pytest.mark.parametrize("how", ["our_key_is_wrong", "encrypted_to_another_certificate"])
def test_an_envelope_our_key_does_not_open_waits_with_one_alert_until_the_key_is_right(app, ctx, server, keys,
                                                                                        source, how):
    from ppt_web import queue


    if how == "our_key_is_wrong":  # the envelopes are for our certificate, but the configured key is an old one
        waiting = {server.add(files=pdf_files("tilvising.pdf")), server.add(files=pdf_files())}
        polling = SvarInnSource(server.url, USER, PASSWORD, make_key_and_cert("gamal-nokkel")[0], timeout=10)
        good = None
    else:  # SvarUt holds a certificate that is not ours for this letter; another one opens fine
        letter = pdf_files("tilvising.pdf")
        waiting = {server.add(files=letter, fault="wrong_key")}
        good = server.add(files=pdf_files())
        polling = source
    for _ in range(2):
        counts = mail_intake.poll_inbound(polling)
        assert counts["undecryptable"] == len(waiting) and counts.get("refused", 0) == 0
    assert not server.failed and not server.rerouted  # never FEILET: SvarUt keeps them for us
    assert waiting <= {m["id"] for m in server.waiting()}
    assert all(server.downloads[w] == 2 for w in waiting)  # fetched again at the next poll
    assert [i.svarinn_id for i in inbox()] == ([good] if good else [])  # no row: it would pass for "received"
    logged, notices = alerts()
    assert sorted(a.object_id for a in logged) == sorted(waiting)  # once per item, not per poll
    told = {n.user_id for n in notices}
    assert user("sekretaer").id in told and len(notices) == len(told) * len(waiting)
    assert {w for w in waiting if any(w in n.text for n in notices)} == waiting
    key = mail_intake.redis_key(mail_intake.UNDECRYPTABLE)
    assert queue.connection().smembers(key) == {w.encode() for w in waiting}
    assert mail_intake.undecryptable_count() == len(waiting)

    if how == "encrypted_to_another_certificate":  # SvarUt is given our certificate and encrypts anew
        (only,) = waiting
        server.items[only].body = _encrypted(zip_files(letter), keys[1])
    counts = mail_intake.poll_inbound(source)  # the right key
    assert counts["received"] == len(waiting)
    assert {i.svarinn_id for i in inbox()} == waiting | ({good} if good else set())
    assert waiting <= server.acknowledged and not server.failed
    assert mail_intake.undecryptable_count() == 0
    assert len(alerts()[0]) == len(waiting)


def test_the_undecryptable_count_is_a_metric(app, ctx, server, keys):
    from ppt_web.main.health import metrics_text

    server.add(files=pdf_files())
    mail_intake.poll_inbound(SvarInnSource(server.url, USER, PASSWORD, make_key_and_cert("gamal")[0], timeout=10))
    assert b"ppt_svarinn_undecryptable 1.0" in metrics_text()


@pytest.mark.parametrize("field,value", [("dato", "0001-01-01T00:00:00+01:00"),
                                         ("metadataFraAvleverendeSystem.dokumentetsDato", "0001-01-01T00:00:00+01:00"),
                                         ("metadataFraAvleverendeSystem.dokumentetsDato", "9999-12-31T23:59:59-05:00"),
                                         ("mappeId.saksaar", "\u00b2")])
def test_a_letter_with_an_odd_date_or_number_holds_up_no_other_letter(app, ctx, field, value):
    """.NET's least date with an offset, or a digit of another script: the letter is read without that value
    (before, every poll stopped at it, and no letter behind it ever arrived)."""
    from ppt_web.inbound.folder import write_example

    root = Path(app.config["PPT_SVARINN_DIR"])
    odd = write_example(root, builders.make_pdf(1), title="Rar dato", sender="Skulen", org_number=None)
    path = root / "inn" / odd / "forsendelse.json"
    meta = json.loads(path.read_text())
    *parents, last = field.split(".")
    target = meta
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    path.write_text(json.dumps(meta))
    write_example(root, builders.make_pdf(2), title="Vanleg brev", sender="Helsestasjonen", org_number=None)
    counts = mail_intake.poll_inbound()
    assert counts.get("received", 0) + counts.get("refused", 0) == 2, counts
    assert {item.meta.get("title") for item in inbox()} >= {"Vanleg brev"}


@pytest.mark.app_config(PPT_SYNC_INCOMPLETE_SECONDS=0, PPT_QUEUE_NAME=f"unread-mail-{uuid.uuid4().hex[:8]}")
def test_the_folder_stand_in_shows_what_it_cannot_take_in_until_it_is_put_right(app, login_as, capsys):
    """Before, a folder without forsendelse.json and a PDF dropped straight into inn/ were passed over without a
    word, at every poll. Now post registration sees each, with the reason, until it is put right or taken away;
    the log says so once; a folder being written (nothing in it old yet), a hidden one and what Windows leaves
    in a shared folder are not news; and someone without post registration sees nothing of it."""
    pdf = builders.make_pdf(1, tag="halvferdig")
    with app.app_context():
        root = Path(app.config["PPT_SVARINN_DIR"])
        inn = root / "inn"
        (inn / "halvferdig").mkdir(parents=True)
        (inn / "halvferdig" / "dokument.pdf").write_bytes(pdf)
        (inn / "brev.pdf").write_bytes(builders.make_pdf(1, tag="laus"))
        (inn / ".skriv-pågår").mkdir()
        (inn / "Thumbs.db").write_bytes(b"bilete")  # what Windows leaves in a folder browsed over a share
        (inn / "desktop.ini").write_text("[.ShellClassInfo]")
        capsys.readouterr()
        for _ in range(3):
            assert mail_intake.poll_inbound()["received"] == 0
        assert inbox() == [] and (inn / "brev.pdf").exists() and (inn / "halvferdig" / "dokument.pdf").exists()
        db.session.remove()
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "cannot be taken in" in line]) == 2  # once each
    web = login_as("sekretaer")
    html = web.get("/post-registration/").get_data(as_text=True)
    assert "2 forsendingar i mappa for digital post kan ikkje takast inn." in html
    assert "halvferdig" in html and "ei mappe utan forsendelse.json" in html
    assert "brev.pdf" in html and "ei fil rett i inn/" in html and "skriv-pågår" not in html
    assert "Thumbs.db" not in html and "desktop.ini" not in html

    without_post_registration(app, web, "halvferdig", "takast inn")  # a secretary without post registration

    with app.app_context():  # forsendelse.json put in last, as a writer should; the loose PDF taken away
        example = write_example(root, pdf, title="Tilvising", sender="Nordby skule", org_number=None)
        os.replace(inn / example / "forsendelse.json", inn / "halvferdig" / "forsendelse.json")
        shutil.rmtree(inn / example)
        (inn / "brev.pdf").unlink()
        assert mail_intake.poll_inbound()["received"] == 1
        db.session.remove()
    html = web.get("/post-registration/").get_data(as_text=True)
    assert "takast inn" not in html and "data-unread" not in html and "Tilvising" in html


@pytest.mark.app_config(PPT_QUEUE_NAME=f"unread-mail-{uuid.uuid4().hex[:8]}")
def test_a_folder_still_being_written_is_not_news(app, ctx):
    """By default a folder without forsendelse.json is waited for as long as a scan that never completes
    (PPT_SYNC_INCOMPLETE_SECONDS): a writer puts the files first and forsendelse.json last."""
    inn = Path(app.config["PPT_SVARINN_DIR"]) / "inn"
    (inn / "halvferdig").mkdir(parents=True)
    (inn / "halvferdig" / "dokument.pdf").write_bytes(b"%PDF")
    mail_intake.poll_inbound()
    assert "mail" not in intake.unread()
