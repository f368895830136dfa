"""Event snapshots: each archive job says what was true when its change happened, and its message is
built from that alone, however late it is sent, however often it is tried, whatever the case is now."""
from __future__ import annotations

import copy
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from lxml import etree
from sqlalchemy import event, select, update

from ppt_web.archive import outbox
from ppt_web.archive.message import AM, AMO, AVS, MDK, build
from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import ArchiveJob, Case, Client, JournalPost, Setting, User

from . import builders
from .conftest import user
from .test_archive_send import jobs, run_all

NS = {"am": AM, "amo": AMO, "avs": AVS, "n": MDK}
APP_NUMBERS = (b"saksaar", b"sakssekvensnummer", b"journalpostnummer", b"journalaar", b"journalsekvensnummer")


def xml(job: ArchiveJob) -> etree._Element:
    return etree.fromstring(build(job).payload)


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert found, f"{path} not in the message"
    return found[0].text


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text for e in root.xpath(path, namespaces=NS)]


def finalized(case: Case, post_type: str, title: str, correspondents: list[posts.CorrespondentData] | None = None,
              actor: str = "radgjevar1", **data) -> JournalPost:
    """A post with one PDF, finalized through the services, as the UI makes it."""
    if post_type == "I":
        data.setdefault("received_on", oslo_today())
    if post_type == "U":
        data.setdefault("sent_on", oslo_today())
    created = posts.create_post(user(actor), case.id, posts.PostData(
        post_type=post_type, title=title, document_date=oslo_today(), correspondents=correspondents or [], **data),
        posts.Upload(io.BytesIO(builders.make_pdf(tag=title)), f"{title}.pdf"))
    return builders.finalize(created, actor)


def close(case: Case) -> None:
    cases.close_case(user("radgjevar1"), case.id)


def test_jobs_replay_history_whatever_the_case_is_when_they_go(app, ctx, monkeypatch):
    """Closed, reopened, its title and a post corrected, closed again, all before the worker sends
    anything: the folder is created open, the posts go into an open folder, each closing is an update
    with its own date; a retry builds the same bytes; the archive takes all of it."""
    case = builders.case(title="Vurdering")
    sender = [posts.CorrespondentData(name="Hasund skule", address="Skulevegen 2", postal_code="6065",
                                      city="Ulsteinvik")]
    incoming = finalized(case, "I", "Tilvising", sender)
    reply = finalized(case, "U", "Svar på tilvising", [posts.CorrespondentData(name="Kari Nordmann")])
    posts.write_off(user("radgjevar1"), incoming.id, "BU", reply_post_id=reply.id)
    first_closing = oslo_today() - timedelta(days=3)
    monkeypatch.setattr(cases, "today", lambda: first_closing)
    close(case)
    monkeypatch.undo()
    cases.reopen_case(user("radgjevar1"), case.id)
    cases.correct_case(user("konsulent"), case.id, "Skrivefeil", "Vurdering, ny")
    finalized(case, "X", "Notat etter møte")
    posts.correct_metadata(user("konsulent"), incoming.id, "Skrivefeil", posts.PostData(
        post_type="I", title="Tilvising frå skulen", document_date=oslo_today(), received_on=oslo_today(),
        correspondents=sender))
    close(case)

    all_jobs = jobs(case_id=case.id)
    assert [j.event for j in all_jobs] == [
        "case_created", "post_finalized", "post_finalized", "post_written_off", "case_closed", "case_reopened",
        "case_corrected", "post_finalized", "metadata_corrected", "case_closed"]
    assert all(j.snapshot is not None and j.job_status == "new" for j in all_jobs)
    created, got, answered, written_off, closed, reopened, renamed, note, corrected, closed_again = all_jobs

    folder = xml(created).find("am:mappe", NS)
    assert text(folder, "am:tittel") == "Vurdering"
    assert text(folder, "am:saksstatus/n:kode") == "B" and folder.find("am:avsluttetDato", NS) is None
    entry = xml(got).find("am:registrering", NS)
    assert text(entry, "am:referanseForelderMappe/n:referanseEksternNoekkel/n:noekkel") == f"case:{case.id}"
    assert text(entry, "am:tittel") == "Tilvising" and text(entry, "am:journalstatus/n:kode") == "F"
    sender_id = text(entry, "am:korrespondansepart/am:korrespondansepartID")
    avskrivning = xml(written_off)
    assert text(avskrivning, "/avs:nyAvskrivning/avs:korrespondansepartID") == sender_id
    assert text(avskrivning, "//avs:referanseAvskrivesAvJournalpost//n:noekkel") == f"post:{reply.id}"
    first = xml(closed)
    assert text(first, "//amo:saksstatus/n:kode") == "A"
    assert text(first, "//amo:avsluttetDato").startswith(first_closing.isoformat())
    again = xml(reopened)
    assert text(again, "//amo:saksstatus/n:kode") == "B" and not again.xpath("//amo:avsluttetDato", namespaces=NS)
    assert text(xml(renamed), "//amo:tittel") == "Vurdering, ny"
    assert text(xml(note), "//am:referanseForelderMappe//n:noekkel") == f"case:{case.id}"
    update_ = xml(corrected)
    assert text(update_, "//amo:tittel") == "Tilvising frå skulen"
    assert texts(update_, "//amo:oppdatering/amo:korrespondansepartID") == [sender_id]
    assert text(xml(closed_again), "//amo:avsluttetDato").startswith(oslo_today().isoformat())

    payloads = {j.id: build(j).payload for j in all_jobs}
    for payload in payloads.values():
        assert not any(number in payload for number in APP_NUMBERS)
    # The case and the people change on: what the jobs say does not.
    cases.reopen_case(user("radgjevar1"), case.id)
    cases.correct_case(user("konsulent"), case.id, "Endå ein", "Vurdering, tredje")
    db.session.execute(update(User).where(User.username == "radgjevar1").values(archive_id="RGJ"))
    db.session.execute(update(Client).where(Client.id == case.client_id).values(
        address="Nyvegen 1", postal_code="6065", city="Ulsteinvik"))
    db.session.commit()
    db.session.expire_all()
    assert {j.id: build(j).payload for j in jobs(case_id=case.id) if j.id in payloads} == payloads

    run_all()
    assert [(j.event, j.archive_status) for j in jobs(case_id=case.id)][-3:] == [
        ("case_closed", "archived"), ("case_reopened", "archived"), ("case_corrected", "archived")]
    assert {j.archive_status for j in jobs(case_id=case.id)} == {"archived"}
    # A retry of a sent job builds the bytes it sent.
    assert all(build(db.session.get(ArchiveJob, job_id)).payload == payload for job_id, payload in payloads.items())


def test_build_reads_nothing_but_the_snapshot(app, ctx):
    """No database statement while a message is built, and a job holding only its snapshot (no case,
    no post, no app) builds the same bytes."""
    case = builders.case()
    incoming = finalized(case, "I", "Brev", [posts.CorrespondentData(name="Per Hansen", address="Vegen 3")])
    posts.write_off(user("radgjevar1"), incoming.id, "TE")
    close(case)
    loaded = jobs(case_id=case.id)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        payloads = [build(job).payload for job in loaded]
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert statements == []
    bare = [ArchiveJob(event=job.event, snapshot=copy.deepcopy(job.snapshot)) for job in loaded]
    with ThreadPoolExecutor(1) as pool:  # a thread of its own: no app context, no session
        elsewhere = pool.submit(lambda: [build(job).payload for job in bare]).result()
    assert elsewhere == payloads


def test_jobs_older_than_snapshots_still_build_and_go(app, ctx):
    """A job written before snapshots existed is built from the objects as they are, and the folder
    of a case closed since is still created open."""
    case = builders.case()
    incoming = finalized(case, "I", "Brev", [posts.CorrespondentData(name="Per Hansen")])
    posts.write_off(user("radgjevar1"), incoming.id, "TE")
    close(case)
    db.session.execute(update(ArchiveJob).values(snapshot=None))
    db.session.commit()
    db.session.expire_all()
    old = jobs(case_id=case.id)
    assert [j.event for j in old] == ["case_created", "post_finalized", "post_written_off", "case_closed"]
    assert all(j.snapshot is None for j in old)
    assert text(xml(old[0]), "//am:saksstatus/n:kode") == "B"
    assert text(xml(old[2]), "//avs:korrespondansepartID") == text(xml(old[1]), "//am:korrespondansepartID")
    run_all()
    assert {j.archive_status for j in jobs(case_id=case.id)} == {"archived"}


@pytest.mark.app_config(PPT_ARCHIVE_SETTINGS={"arkivdel": "PPT", "fagsystem": "PPT-Ulstein"})
def test_addresses_people_and_settings_as_the_archive_knows_them(app, ctx):
    """Structured addresses (street lines, postal code, place, country; a legacy one-line address split),
    people by their archive id, and the unit and archive part the administrator set."""
    db.session.add(Setting(key="archive.administrativ_enhet", value="PP-tenesta"))
    db.session.execute(update(User).where(User.username == "radgjevar1").values(archive_id="RGJ1"))
    db.session.commit()
    owner = builders.client(address="Heimvegen 3, 6065 Ulsteinvik")  # one line, as older rows have it
    case = builders.case(client_obj=owner)
    incoming = finalized(case, "I", "Brev", [
        posts.CorrespondentData(name="Hasund skule", address="v/ rektor\nSkulevegen 2", postal_code="6065",
                                city="Ulsteinvik"),
        posts.CorrespondentData(name="Hans Hansen", address="Storgata 1", postal_code="11432", city="Stockholm",
                                country="SE")])
    posts.write_off(user("radgjevar1"), incoming.id, "TE")
    created, got, written_off = jobs(case_id=case.id)

    folder = xml(created).find("am:mappe", NS)
    assert text(folder, "am:arkivdel/n:kode") == "PPT"
    assert text(folder, "am:referanseEksternNoekkel/n:fagsystem") == "PPT-Ulstein"
    assert text(folder, "am:administrativEnhet/n:navn") == "PP-tenesta"
    assert text(folder, "am:saksansvarlig/n:identifikator") == "RGJ1"
    assert text(folder, "am:saksansvarlig/n:navn") == user("radgjevar1").full_name
    part = folder.find("am:part", NS)
    assert texts(part, "am:postadresse") == ["Heimvegen 3"]
    assert text(part, "am:postnummer") == "6065" and text(part, "am:poststed") == "Ulsteinvik"
    assert text(part, "am:landkode/n:kode") == "NO"

    school, person = xml(got).findall("am:registrering/am:korrespondansepart", NS)
    assert texts(school, "am:postadresse") == ["v/ rektor", "Skulevegen 2"]
    assert (text(school, "am:postnummer"), text(school, "am:poststed")) == ("6065", "Ulsteinvik")
    assert text(person, "am:landkode/n:kode") == "SE" and text(person, "am:poststed") == "Stockholm"
    assert text(xml(got), "//am:registrering/am:referanseEksternNoekkel/n:fagsystem") == "PPT-Ulstein"
    assert text(xml(written_off), "//avs:avskrevetAv/n:identifikator") == "RGJ1"
    run_all()
    assert {j.archive_status for j in jobs(case_id=case.id)} == {"archived"}


def test_a_note_for_follow_up_is_written_off_for_its_internal_recipient(app, ctx):
    """A note (N) with no recipient named goes to the archive with the case's handler as internal
    recipient (IM), and its write-off names that party."""
    case = builders.case()
    note = finalized(case, "N", "Notat til oppfølging")
    posts.write_off(user("radgjevar1"), note.id, "TO")
    _created, got, written_off = jobs(case_id=case.id)
    party = xml(got).find("am:registrering/am:korrespondansepart", NS)
    assert text(party, "am:korrespondanseparttype/n:kode") == "IM"
    assert text(party, "am:saksbehandler/n:navn") == user("radgjevar1").full_name
    assert text(xml(written_off), "//avs:korrespondansepartID") == text(party, "am:korrespondansepartID")
    run_all()
    assert {j.archive_status for j in jobs(case_id=case.id)} == {"archived"}


def test_expedition_is_journalstatus_e_with_the_day_it_left(app, ctx):
    """post_expedited: an update to E with sendtDato; the snapshot keeps that day."""
    case = builders.case()
    letter = finalized(case, "U", "Brev", [posts.CorrespondentData(name="Kari Nordmann")],
                       sent_on=oslo_today() - timedelta(days=2))
    left = oslo_today() - timedelta(days=1)
    db.session.execute(update(JournalPost).where(JournalPost.id == letter.id).values(expedited_on=left,
                                                                                   expedition="paper"))
    db.session.refresh(letter)
    outbox.post_expedited(letter)
    db.session.commit()
    expedited = jobs(case_id=case.id, event="post_expedited")[0]
    root = xml(expedited)
    assert text(root, "//amo:journalstatus/n:kode") == "E"
    assert text(root, "//amo:sendtDato").startswith(left.isoformat())
    assert expedited.snapshot["expedition"] == {"sent_on": left.isoformat()}
    # A post already expedited when it is finalized goes in as E.
    db.session.execute(update(ArchiveJob).where(ArchiveJob.post_id == letter.id).values(snapshot=None))
    db.session.commit()
    db.session.expire_all()
    late = db.session.scalar(select(ArchiveJob).where(ArchiveJob.post_id == letter.id,
                                                      ArchiveJob.event == "post_finalized"))
    assert text(xml(late), "//am:journalstatus/n:kode") == "E"
    assert text(xml(late), "//am:sendtDato").startswith(left.isoformat())


def test_a_closed_case_that_reaches_the_archive_late_is_closed_after_its_folder(app, ctx):
    """Its folder job deleted (or the case linked only now): a later change of the closed case makes
    the folder, open, then the change, then the closing, and the reference archive takes all three."""
    case = builders.case()
    close(case)
    db.session.execute(update(ArchiveJob).where(ArchiveJob.case_id == case.id).values(
        deleted_at=db.func.now(), deleted_by_id=user("konsulent").id, deleted_reason="test"))
    db.session.commit()
    cases.correct_case(user("konsulent"), case.id, "Skrivefeil", "Retta tittel")
    made = [j for j in jobs(case_id=case.id) if j.deleted_at is None]
    assert [j.event for j in made] == ["case_created", "case_corrected", "case_closed"]
    assert text(xml(made[0]), "//am:mappe/am:saksstatus/n:kode") == "B"
    assert text(xml(made[2]), "//amo:mappeOppdateringer/amo:saksstatus/n:kode") == "A"
    run_all()
    assert [j.archive_status.value for j in jobs(case_id=case.id) if j.deleted_at is None] == ["archived"] * 3



def test_a_corrected_setting_reaches_a_job_sent_after_it_but_the_system_name_stays(app, ctx):
    """A job refused for a wrong archive part goes right once the administrator corrects the setting;
    the fagsystem the archive knows the objects by is the one of the job's moment."""
    db.session.add(Setting(key="archive.arkivdel", value="FEIL"))
    db.session.commit()
    case = builders.case()
    (created,) = jobs(case_id=case.id)
    db.session.execute(update(Setting).where(Setting.key == "archive.arkivdel").values(value="PPT2"))
    db.session.add(Setting(key="archive.fagsystem", value="Nytt-namn"))
    db.session.commit()
    from ppt_web.archive import identity

    folder = etree.fromstring(build(created, current=identity.settings()).payload).find("am:mappe", NS)
    assert text(folder, "am:arkivdel/n:kode") == "PPT2"
    assert text(folder, "am:referanseEksternNoekkel/n:fagsystem") != "Nytt-namn"
    assert text(xml(created).find("am:mappe", NS), "am:arkivdel/n:kode") == "FEIL"  # the snapshot alone
