"""Fiks Arkiv V1 messages: every archive event builds XML that the KS XSDs and code lists accept."""
from __future__ import annotations

import io
import string
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import select

from ppt_web.archive import codes, replies
from ppt_web.archive.conventions import DEFAULTS, criteria, party_id
from ppt_web.archive.message import (
    AM,
    AMO,
    AVS,
    MDK,
    Message,
    MessageInvalid,
    build,
    validate,
)
from ppt_web.cases import posts
from ppt_web.cases import service as cases
from ppt_web.clients import organisations
from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.generate import org_number
from ppt_web.models import (
    ArchiveJob,
    Case,
    CaseKind,
    CaseStatus,
    Client,
    Correspondent,
    Document,
    JournalPost,
    Organisation,
    OrgKind,
    PostStatus,
    PostType,
    StoredFile,
    User,
)
from ppt_web.models.archive import AVSKRIVNING, OPPDATER, OPPRETT

from . import builders
from .conftest import user

NS = {"am": AM, "amo": AMO, "avs": AVS, "n": MDK}


def job_for(event: str, case: Case, post: JournalPost | None = None, **extra) -> ArchiveJob:
    """An ArchiveJob that is never added to the session, without a snapshot, as jobs older than
    snapshots are: build() takes one of the objects as they are now."""
    from ppt_web.archive.message import EVENTS

    return ArchiveJob(event=event, operation=EVENTS[event], case=case, post=post, client=case.client,
                      finalized_on=oslo_today(), **extra)


def xml(message: Message) -> etree._Element:
    return etree.fromstring(message.payload)


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert found, f"{path} not in the message"
    return found[0].text if isinstance(found[0], etree._Element) else str(found[0])


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text for e in root.xpath(path, namespaces=NS)]


def post_with_files(case: Case, post_type: str, attachments: int = 2, title: str = "Brev", finalize: bool = True,
                    **data) -> JournalPost:
    """A post with a main PDF and attachments, through the same service as the UI."""
    if post_type in ("I", "U"):
        data.setdefault("correspondents", [posts.CorrespondentData(name="Kari Nordmann", address="Storgata 1")])
    if post_type == "I":
        data.setdefault("received_on", oslo_today() - timedelta(days=2))
    if post_type == "U":
        data.setdefault("sent_on", oslo_today())
    post = posts.create_post(
        user(case.handler.username), case.id,
        posts.PostData(post_type=post_type, title=title, document_date=oslo_today() - timedelta(days=3), **data),
        posts.Upload(io.BytesIO(builders.make_pdf(2)), "Hovuddokument æøå.pdf"),
        [posts.Upload(io.BytesIO(builders.make_pdf()), f"Vedlegg {n}.pdf") for n in range(1, attachments + 1)])
    return builders.finalize(post, case.handler.username) if finalize else post


def system_case() -> Case:
    school = organisations.register_organisation(user("konsulent"), name="Hasund skule", org_number=org_number(4711),
                                           kind="school", address="Skulevegen 2, 6065 Ulsteinvik")
    return cases.register_case(user("konsulent"), cases.CaseData(kind="system", title="Skulemiljø 8. trinn",
                                                                 organisation_id=school.id,
                                                                 handler_id=user("radgjevar1").id))


# --- cases ---

def test_person_case_is_a_saksmappe_classified_by_national_id(ctx):
    """The client's folder pattern: saksmappe, klassifikasjon by national id, the client as part K."""
    case = builders.case(title="Sakkunnig vurdering & <oppfølging>")
    message = build(job_for("case_created", case))
    root = xml(message)
    assert message.meldingstype == OPPRETT and message.payload_name == "arkivmelding.xml" and message.files == ()
    assert text(root, "/am:arkivmelding/am:antallFiler") == "0"
    mappe = root.find("am:mappe", NS)
    assert mappe.get(f"{{{codes.XSI}}}type") == "saksmappe"
    assert text(mappe, "am:tittel") == "Sakkunnig vurdering & <oppfølging>"
    # The archive numbers its folders; the case system's number is only told, in beskrivelse.
    assert not mappe.xpath("am:saksaar|am:sakssekvensnummer|am:mappeID", namespaces=NS)
    assert text(mappe, "am:beskrivelse").endswith(case.number)
    assert text(mappe, "am:saksdato") == case.opened_on.isoformat()
    assert text(mappe, "am:saksstatus/n:kode") == "B"
    assert text(mappe, "am:saksansvarlig/n:navn") == case.handler.full_name
    assert text(mappe, "am:saksansvarlig/n:identifikator") == case.handler.username  # no archive id set
    assert text(mappe, "am:klassifikasjon/am:klassifikasjonssystemID") == "FNR"
    assert text(mappe, "am:klassifikasjon/am:klasseID") == case.client.national_id
    assert text(mappe, "am:klassifikasjon/am:erSkjermet") == "true"
    assert text(mappe, "am:part/am:partRolle/n:kode") == "K"
    assert text(mappe, "am:part/am:personID/am:identifikator") == case.client.national_id
    assert text(mappe, "am:referanseEksternNoekkel/n:fagsystem") == "ppt_web"
    assert text(mappe, "am:referanseEksternNoekkel/n:noekkel") == f"case:{case.id}"
    assert text(mappe, "am:skjerming/am:tilgangsrestriksjon/n:kode") == DEFAULTS["tilgangsrestriksjon"]


def test_system_case_is_classified_by_organisation_number(ctx):
    """A system case has no client: it is found by its organisation's number."""
    case = system_case()
    mappe = xml(build(job_for("case_created", case))).find("am:mappe", NS)
    assert text(mappe, "am:klassifikasjon/am:klassifikasjonssystemID") == "ORGNR"
    assert text(mappe, "am:klassifikasjon/am:klasseID") == case.organisation.org_number
    assert mappe.find("am:part", NS) is None


def test_settings_replace_the_archive_local_values(ctx):
    """Klassifikasjonssystem, arkivdel, administrativ enhet and mappetype are the municipality's own."""
    case = builders.case(category="statement")
    mappe = xml(build(job_for("case_created", case), {
        "klassifikasjonssystem_person": "PNR", "arkivdel": "PPT", "administrativ_enhet": "PP-tenesta",
        "mappetype": {"statement": "UTTALE"}, "tilgangsrestriksjon": "UO"})).find("am:mappe", NS)
    assert text(mappe, "am:klassifikasjon/am:klassifikasjonssystemID") == "PNR"
    assert text(mappe, "am:arkivdel/n:kode") == "PPT"
    assert text(mappe, "am:administrativEnhet/n:navn") == "PP-tenesta"
    assert text(mappe, "am:mappetype/n:kode") == "UTTALE"
    assert text(mappe, "am:skjerming/am:tilgangsrestriksjon/n:kode") == "UO"


def test_closing_and_reopening_update_saksstatus(ctx):
    """Closing sends saksstatus A with avsluttetDato; reopening sends B (arkivmelding.oppdater)."""
    case = builders.case()
    cases.close_case(user("radgjevar1"), case.id)
    closed = build(job_for("case_closed", case))
    root = xml(closed)
    assert closed.meldingstype == OPPDATER and closed.payload_name == "arkivmelding.xml"
    update = root.find("amo:mappeOppdateringer", NS)
    assert update.get(f"{{{codes.XSI}}}type") == "saksmappeOppdatering"
    assert text(update, "amo:referanseTilMappe/n:referanseEksternNoekkel/n:noekkel") == f"case:{case.id}"
    assert text(update, "amo:saksstatus/n:kode") == "A"
    assert text(update, "amo:avsluttetDato").startswith(oslo_today().isoformat())
    # A folder is created open, even when the case is closed by the time its job is built.
    created = xml(build(job_for("case_created", case)))
    assert text(created, "//am:saksstatus/n:kode") == "B" and not created.xpath("//am:avsluttetDato", namespaces=NS)
    cases.reopen_case(user("radgjevar1"), case.id)
    reopened = xml(build(job_for("case_reopened", case)))
    assert text(reopened, "//amo:saksstatus/n:kode") == "B" and not reopened.xpath("//amo:avsluttetDato", namespaces=NS)


# --- journal posts ---

@pytest.mark.parametrize("post_type", ["I", "U", "N", "X"])
def test_finalized_post_is_a_journalpost_with_its_files(ctx, post_type):
    """Each document is a dokumentbeskrivelse with one dokumentobjekt carrying SHA-256 and size."""
    case = builders.case()
    post = post_with_files(case, post_type, attachments=2, title=f"Brev {post_type} om \"Ola\" & <skule>",
                           legal_basis="Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1")
    message = build(job_for("post_finalized", case, post))
    root = xml(message)
    assert message.meldingstype == OPPRETT and len(message.files) == 3
    assert text(root, "/am:arkivmelding/am:antallFiler") == "3"
    entry = root.find("am:registrering", NS)
    assert entry.get(f"{{{codes.XSI}}}type") == "journalpost"
    assert text(entry, "am:referanseForelderMappe/n:referanseEksternNoekkel/n:noekkel") == f"case:{case.id}"
    assert text(entry, "am:referanseEksternNoekkel/n:noekkel") == f"post:{post.id}"
    assert text(entry, "am:tittel") == f"Brev {post_type} om \"Ola\" & <skule>"
    assert text(entry, "am:journalposttype/n:kode") == post_type
    assert text(entry, "am:journalstatus/n:kode") == "F"
    assert not entry.xpath("am:journalpostnummer|am:journalaar|am:journalsekvensnummer|am:registreringsID",
                           namespaces=NS)
    assert text(entry, "am:beskrivelse").endswith(post.number)
    assert text(entry, "am:dokumentetsDato") == post.document_date.isoformat()
    assert text(entry, "am:skjerming/am:skjermingshjemmel") == "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1"
    assert text(entry, "am:antallVedlegg") == "2"
    descriptions = entry.findall("am:dokumentbeskrivelse", NS)
    assert [text(d, "am:tilknyttetRegistreringSom/n:kode") for d in descriptions] == ["H", "V", "V"]
    assert [text(d, "am:dokumentnummer") for d in descriptions] == ["1", "2", "3"]
    assert text(descriptions[0], "am:tittel") == post.title
    by_sha = {d.sha256: d for d in post.documents}
    for description, outgoing in zip(descriptions, message.files, strict=False):
        obj = description.find("am:dokumentobjekt", NS)
        assert text(obj, "am:referanseDokumentfil") == outgoing.name
        assert text(obj, "am:sjekksum") == outgoing.sha256 and text(obj, "am:sjekksumAlgoritme") == "SHA256"
        assert int(text(obj, "am:filstoerrelse")) == outgoing.size == by_sha[outgoing.sha256].file.size
        assert text(obj, "am:filnavn") == outgoing.filename
        assert text(obj, "am:variantformat/n:kode") == "P" and text(obj, "am:versjonsnummer") == "1"
    assert message.files[0].filename == "Hovuddokument æøå.pdf"
    assert message.files[0].name == "01-Hovuddokument-aeoa.pdf"
    assert len({f.name for f in message.files}) == 3
    if post_type == "I":
        assert text(entry, "am:korrespondansepart/am:korrespondanseparttype/n:kode") == "EA"
        assert text(entry, "am:mottattDato").startswith(post.received_on.isoformat())
    if post_type == "U":
        assert text(entry, "am:korrespondansepart/am:korrespondanseparttype/n:kode") == "EM"
        assert text(entry, "am:sendtDato").startswith(post.sent_on.isoformat())
    if post_type in ("I", "U"):
        assert text(entry, "am:korrespondansepart/am:korrespondansepartNavn") == "Kari Nordmann"
        assert text(entry, "am:korrespondansepart/am:postadresse") == "Storgata 1"
        assert text(entry, "am:korrespondansepart/am:korrespondansepartID") == party_id(post, 1)


def test_post_in_system_case_is_archived(ctx):
    """A post linked to an organisation number is archived like a client's."""
    case = system_case()
    post = post_with_files(case, "N", attachments=0)
    assert criteria(post)
    message = build(job_for("post_finalized", case, post))
    assert len(message.files) == 1 and text(xml(message), "//am:antallVedlegg") == "0"


def test_administration_case_and_draft_posts_are_not_archived(ctx):
    """criteria: finalized AND linked to a national id or organisation number."""
    admin_case = cases.register_case(user("konsulent"), cases.CaseData(kind="administration", title="Budsjett",
                                                                       handler_id=user("radgjevar1").id))
    admin_post = post_with_files(admin_case, "N", attachments=0)
    assert not criteria(admin_post)
    with pytest.raises(MessageInvalid, match="not archived"):
        build(job_for("post_finalized", admin_case, admin_post))
    case = builders.case()
    draft = post_with_files(case, "N", attachments=0, finalize=False)
    assert not criteria(draft)
    with pytest.raises(MessageInvalid, match="not archived"):
        build(job_for("post_finalized", case, draft))
    no_number = organisations.register_organisation(user("konsulent"), name="Utan nummer", org_number="", kind="other")
    unlinked = cases.register_case(user("konsulent"), cases.CaseData(kind="system", title="Utan nummer",
                                                                     organisation_id=no_number.id,
                                                                     handler_id=user("radgjevar1").id))
    assert not criteria(post_with_files(unlinked, "N", attachments=0))
    assert criteria(post_with_files(case, "N", attachments=0))


def test_written_off_incoming_post_is_an_avskrivning(ctx):
    """Write-off by reply: avskrivningsmaate BU, the reply referenced, the sender by our korrespondansepartID."""
    case = builders.case()
    incoming = post_with_files(case, "I", attachments=0)
    reply = post_with_files(case, "U", attachments=0, title="Svar")
    posts.write_off(user("radgjevar1"), incoming.id, "BU", reply_post_id=reply.id)
    message = build(job_for("post_written_off", case, incoming))
    root = xml(message)
    assert message.meldingstype == AVSKRIVNING and message.payload_name == "avskrivning-opprett.xml"
    assert text(root, "/avs:nyAvskrivning/avs:avskrivning/avs:avskrivningsmaate/n:kode") == "BU"
    assert text(root, "//avs:avskrivningsdato") == oslo_today().isoformat()
    assert text(root, "//avs:avskrevetAv/n:navn") == user("radgjevar1").full_name
    assert text(root, "//avs:referanseAvskrivesAvJournalpost//n:noekkel") == f"post:{reply.id}"
    assert text(root, "/avs:nyAvskrivning/avs:referanseTilJournalpost//n:noekkel") == f"post:{incoming.id}"
    assert text(root, "/avs:nyAvskrivning/avs:korrespondansepartID") == party_id(incoming, 1)
    # The id the opprett message gave the sender is the one the avskrivning names.
    opprett = xml(build(job_for("post_finalized", case, incoming)))
    assert text(opprett, "//am:korrespondansepartID") == party_id(incoming, 1)

    other = post_with_files(case, "I", attachments=0)
    posts.write_off(user("radgjevar1"), other.id, "TE")
    root = xml(build(job_for("post_written_off", case, other)))
    assert text(root, "//avs:avskrivningsmaate/n:kode") == "TE"
    assert not root.xpath("//avs:referanseAvskrivesAvJournalpost", namespaces=NS)


def test_metadata_correction_is_an_update_of_the_journalpost(ctx):
    """correct_metadata by the consultant: title, dates and correspondents go out as arkivmelding.oppdater."""
    case = builders.case()
    post = post_with_files(case, "I", attachments=1)
    new_day = oslo_today() - timedelta(days=10)
    correction = posts.correct_metadata(user("konsulent"), post.id, "Feil dato og avsendar", posts.PostData(
        post_type="I", title="Tilvising frå skule & heim", document_date=new_day, received_on=new_day,
        correspondents=[posts.CorrespondentData(name="Per Hansen", address="Vegen 3"),
                        posts.CorrespondentData(name="Hasund skule")]))
    first_job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.correction_id == correction.id))
    message = build(first_job)
    root = xml(message)
    assert message.meldingstype == OPPDATER
    update = root.find("amo:registreringOppdateringer", NS)
    assert update.get(f"{{{codes.XSI}}}type") == "journalpostOppdatering"
    assert text(update, "amo:referanseTilRegistrering/n:referanseEksternNoekkel/n:noekkel") == f"post:{post.id}"
    assert text(update, "amo:tittel") == "Tilvising frå skule & heim"
    assert text(update, "amo:dokumentetsDato") == new_day.isoformat()
    assert text(update, "amo:mottattDato").startswith(new_day.isoformat())
    changes = update.find("amo:korrespondansepartOppdateringer", NS)
    assert text(changes, "amo:oppdatering/amo:korrespondansepartID") == party_id(post, 1)
    assert text(changes, "amo:oppdatering/amo:korrespondansepartNavn") == "Per Hansen"
    assert text(changes, "amo:ny/am:korrespondansepartID") == party_id(post, 2)
    assert text(changes, "amo:ny/am:korrespondansepartNavn") == "Hasund skule"

    # A second correction that drops the second correspondent deletes it by its id.
    second = posts.correct_metadata(user("konsulent"), post.id, "Berre ein avsendar", posts.PostData(
        post_type="I", title="Tilvising frå skule & heim", document_date=new_day, received_on=new_day,
        correspondents=[posts.CorrespondentData(name="Per Hansen", address="Vegen 3")]))
    second_job = db.session.scalar(select(ArchiveJob).where(ArchiveJob.correction_id == second.id))
    changes = xml(build(second_job))
    assert texts(changes, "//amo:slett/amo:korrespondansepartID") == [party_id(post, 2)]
    assert texts(changes, "//amo:oppdatering/amo:korrespondansepartID") == [party_id(post, 1)]
    assert not changes.xpath("//amo:ny", namespaces=NS)
    # The first job, built late, still carries its own correction's values.
    late = xml(build(first_job))
    assert texts(late, "//amo:ny/am:korrespondansepartNavn") == ["Hasund skule"]
    # A job older than snapshots, built late after the second correction, keeps its correction's names.
    old = xml(build(job_for("metadata_corrected", case, post, correction_id=correction.id)))
    assert texts(old, "//amo:korrespondansepartNavn|//am:korrespondansepartNavn") == ["Per Hansen", "Hasund skule"]


def test_dispatched_post_has_journalstatus_e(ctx):
    """Ekspedert (E) is what a dispatched letter is in the archive."""
    case = builders.case()
    post = post_with_files(case, "U", attachments=0)
    with db.session.no_autoflush:
        post.status = PostStatus.DISPATCHED  # in memory only: dispatch is another area's service
        assert criteria(post)
        assert text(xml(build(job_for("post_finalized", case, post))), "//am:journalstatus/n:kode") == "E"
    db.session.rollback()


# --- refusals ---

def test_code_outside_the_code_list_is_refused_readably(ctx):
    """A dokumenttype the Fiks code list does not hold never leaves the app."""
    case = builders.case()
    post = post_with_files(case, "N", attachments=0)
    with pytest.raises(MessageInvalid) as refused:
        build(job_for("post_finalized", case, post), {"dokumenttype": {"N": "BREV"}})
    assert str(refused.value).startswith("/arkivmelding/registrering/dokumentbeskrivelse/dokumenttype: code 'BREV'")
    assert "dokumenttype" in str(refused.value) and "NOTAT" in str(refused.value)


def test_schema_violations_are_refused_readably(ctx):
    """validate() names the element and the fault; build() never returns such a message."""
    good = build(job_for("case_created", builders.case())).payload
    empty_title = good.replace(b"<tittel>Vurdering</tittel>", b"<tittel></tittel>")
    with pytest.raises(MessageInvalid, match=r"^/arkivmelding/mappe/tittel: .*minimum length"):
        validate(OPPRETT, empty_title)
    with pytest.raises(MessageInvalid, match="saksstatus: code 'Q'"):
        validate(OPPRETT, good.replace(b"<n5mdk:kode>B</n5mdk:kode>", b"<n5mdk:kode>Q</n5mdk:kode>"))
    with pytest.raises(MessageInvalid, match="not in the namespace"):
        validate(OPPDATER, good)
    with pytest.raises(MessageInvalid, match="not well-formed"):
        validate(OPPRETT, b"<arkivmelding>")
    with pytest.raises(MessageInvalid, match="is not an archive event"):
        build(ArchiveJob(event="case_renamed", case=builders.case()))


def test_control_character_in_a_title_is_refused(ctx):
    """XML cannot carry a control character: the log says where, and the consultant corrects it."""
    case = builders.case()
    with db.session.no_autoflush:
        case.title = "Vurdering\x0b"
        with pytest.raises(MessageInvalid, match=r"^/arkivmelding/mappe/tittel: .*control character"):
            build(job_for("case_created", case))
    db.session.rollback()


def test_standards_folder_can_be_configured(app, tmp_path):
    """PPT_STANDARDS_DIR points at another copy of the standard, e.g. with the archive's own code list."""
    import json
    import shutil

    source = codes.standards_dir() / codes.FIKS
    target = tmp_path / "standards" / codes.FIKS
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.svg", "*.puml", "docs"))
    listed = next(target.glob("kodelister/*dokumenttype/*.json"))
    data = json.loads(listed.read_text(encoding="utf-8"))
    data["kodeliste"].append({"kodeverdi": "BREV", "kodebeskrivelse": "Brev"})
    listed.write_text(json.dumps(data), encoding="utf-8")
    with app.app_context():
        case = builders.case()
        post = post_with_files(case, "N", attachments=0)
        with pytest.raises(MessageInvalid, match="BREV"):
            build(job_for("post_finalized", case, post), {"dokumenttype": {"N": "BREV"}})
        app.config["PPT_STANDARDS_DIR"] = str(tmp_path / "standards")
        message = build(job_for("post_finalized", case, post), {"dokumenttype": {"N": "BREV"}})
        assert text(xml(message), "//am:dokumenttype/n:beskrivelse") == "Brev"
        db.session.remove()


# --- property: any valid domain data makes a valid message ---

_printable = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs"))
_words = st.text(alphabet=st.one_of(_printable, st.sampled_from("&<>\"'æøåÆØÅ")), min_size=1, max_size=120)
_title = _words.map(lambda s: " ".join(s.split())).filter(bool)
_day = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31))
_digits = st.text(alphabet=string.digits, min_size=9, max_size=11)


@st.composite
def domain_post(draw) -> JournalPost:
    """A finalized post in a person or system case, made in memory as the services would leave it."""
    handler = User(id=draw(st.integers(1, 10**6)), username=draw(st.from_regex(r"[a-z]{3,12}", fullmatch=True)),
                   full_name=draw(_title))
    kind = draw(st.sampled_from([CaseKind.PERSON, CaseKind.SYSTEM]))
    opened = draw(_day)
    case = Case(id=draw(st.integers(1, 10**6)), number=f"{opened.year}/{draw(st.integers(1, 99999)):05d}",
                kind=kind, title=draw(_title), handler=handler, opened_on=opened,
                status=draw(st.sampled_from([CaseStatus.OPEN, CaseStatus.CLOSED])), closed_on=draw(_day))
    if kind == CaseKind.PERSON:
        case.client = Client(id=draw(st.integers(1, 10**6)), national_id=draw(_digits), given_name=draw(_title),
                             family_name=draw(_title), birth_date=opened, address=draw(st.just("") | _title),
                             postal_code=draw(st.just("") | st.from_regex(r"[0-9]{4}", fullmatch=True)),
                             city=draw(st.just("") | _title))
    else:
        case.organisation = Organisation(id=draw(st.integers(1, 10**6)), name=draw(_title), org_number=draw(_digits),
                                         kind=OrgKind.SCHOOL, address="")
    post_type = draw(st.sampled_from(list(PostType)))
    post = JournalPost(id=draw(st.integers(1, 10**6)), seq=draw(st.integers(1, 500)), case=case,
                       post_type=post_type, title=draw(_title), document_date=draw(_day), received_on=draw(_day),
                       sent_on=draw(_day), exempt=True, legal_basis=draw(_title),
                       status=draw(st.sampled_from([PostStatus.FINALIZED, PostStatus.DISPATCHED])),
                       registered_at=datetime.combine(draw(_day), datetime.min.time(), UTC))
    for _ in range(draw(st.integers(0 if post_type in (PostType.N, PostType.X) else 1, 3))):
        post.correspondents.append(Correspondent(
            role="sender", name=draw(_title), address=draw(st.just("") | _title),
            org_number=draw(st.none() | _digits)))
    for position in range(1 + draw(st.integers(0, 3))):
        sha = draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
        stored = StoredFile(sha256=sha, size=draw(st.integers(1, 2**31 - 1)), page_count=1,
                            content_type="application/pdf")
        post.documents.append(Document(role="main" if position == 0 else "attachment", position=position,
                                       filename=draw(_title) + ".pdf", sha256=sha, file=stored))
    return post


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(post=domain_post())
def test_any_valid_post_makes_a_valid_message(ctx, post):
    """Titles with & < > " and Nynorsk letters, any dates, 0-3 attachments, every post type: always valid."""
    message = build(job_for("post_finalized", post.case, post))
    root = xml(message)
    assert text(root, "//am:tittel[../am:journalposttype]") == post.title
    assert text(root, "/am:arkivmelding/am:antallFiler") == str(len(post.documents)) == str(len(message.files))
    assert [f.sha256 for f in message.files] == [d.sha256 for d in post.documents]
    assert len({f.name for f in message.files}) == len(message.files)
    assert build(job_for("case_created", post.case)).meldingstype == OPPRETT
    assert build(job_for("case_closed", post.case)).meldingstype == OPPDATER
    if post.post_type == PostType.I:
        post.write_off_method = "TO"
        post.written_off_at = post.registered_at
        assert build(job_for("post_written_off", post.case, post)).meldingstype == AVSKRIVNING
    assert build(job_for("metadata_corrected", post.case, post)).meldingstype == OPPDATER


# --- replies ---

def test_kvittering_round_trip_for_a_journalpost(ctx):
    """The local archive's kvittering validates, and parse_kvittering gives back the ids it assigned."""
    case = builders.case()
    post = post_with_files(case, "I", attachments=1)
    message = build(job_for("post_finalized", case, post))
    ids = {"registrering": {
        "systemID": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "journalaar": 2026, "journalsekvensnummer": 41,
        "journalpostnummer": post.seq, "registreringsID": f"{case.number}-{post.seq}",
        "opprettetEllerEksisterende": "Opprettet",
        "dokumentbeskrivelser": [
            {"dokumentnummer": 1, "systemID": "2b4e28ba-2fa1-11d2-883f-0016d3cca427",
             "dokumentobjekter": ["3b4e28ba-2fa1-11d2-883f-0016d3cca427"]},
            {"dokumentnummer": 2, "systemID": "4b4e28ba-2fa1-11d2-883f-0016d3cca427",
             "dokumentobjekter": ["5b4e28ba-2fa1-11d2-883f-0016d3cca427"]}]}}
    payload = replies.kvittering(OPPRETT, message, ids)
    assert codes.problems(replies.KVITTERING, payload) == []
    parsed = replies.parse_kvittering(payload)
    assert "mappe" not in parsed
    assert parsed["registrering"] == {**ids["registrering"], "referanseEksternNoekkel": f"post:{post.id}",
                                      "journalposttype": "I", "journalstatus": "F"}


def test_kvittering_round_trip_for_a_saksmappe(ctx):
    """A case's kvittering carries the archive's systemID and saksnummer, and our key back."""
    case = builders.case()
    message = build(job_for("case_created", case))
    ids = {"mappe": {"systemID": "6b4e28ba-2fa1-11d2-883f-0016d3cca427", "saksaar": 2026, "sakssekvensnummer": 77,
                     "opprettetEllerEksisterende": "Eksisterende"}}
    parsed = replies.parse_kvittering(replies.kvittering(OPPRETT, message, ids))
    assert parsed["mappe"] == {**ids["mappe"], "referanseEksternNoekkel": f"case:{case.id}",
                               "saksdato": case.opened_on.isoformat()}
    with pytest.raises(replies.ReplyInvalid, match="systemID"):
        replies.kvittering(OPPRETT, message, {"mappe": {"systemID": "not-a-uuid"}})


def test_updates_and_avskrivning_have_empty_kvittering(ctx):
    """Their kvittering type has no payload (meldingstyper.json): the http reply body is empty."""
    case = builders.case()
    cases.close_case(user("radgjevar1"), case.id)
    assert replies.kvittering(OPPDATER, build(job_for("case_closed", case)), {}) == b""


@pytest.mark.parametrize("meldingstype", [replies.UGYLDIGFORESPOERSEL, replies.IKKEFUNNET, replies.SERVERFEIL])
def test_feilmelding_round_trip(meldingstype):
    """Each feilmelding validates against its XSD and parses back to its text, escaping and all."""
    text_in = "Saksmappe case:7 finst ikkje <arkivdel> & \"PPT\"\x0b"
    payload = replies.feilmelding(meldingstype, text_in, feil_id="feil-1")
    assert replies.parse_feilmelding(payload) == text_in.replace("\x0b", "\ufffd")


def test_parsers_refuse_what_is_not_a_reply():
    """Anything but a valid reply of the right kind is ReplyInvalid, with a readable text."""
    with pytest.raises(replies.ReplyInvalid, match="not a Fiks Arkiv feilmelding"):
        replies.parse_feilmelding(b"<html>Bad gateway</html>")
    with pytest.raises(replies.ReplyInvalid, match="not well-formed"):
        replies.parse_feilmelding(b"Bad gateway")
    with pytest.raises(replies.ReplyInvalid, match="namespace"):
        replies.parse_kvittering(replies.feilmelding(replies.SERVERFEIL, "feil"))
    broken = replies.feilmelding(replies.IKKEFUNNET, "borte").replace(b"<feil:feilId>", b"<feil:feilIdx>").replace(
        b"</feil:feilId>", b"</feil:feilIdx>")
    with pytest.raises(replies.ReplyInvalid, match="ikkefunnet"):
        replies.parse_feilmelding(broken)


def test_vendored_standards_match_the_shared_originals():
    """The package ships unchanged copies of the KS files; CI has shared/ beside the checkout."""
    import hashlib
    from pathlib import Path

    from ppt_web.archive.codes import VENDORED

    shared = next((p / "shared" / "standards" for p in Path(__file__).resolve().parents
                   if (p / "shared" / "standards" / "fiks-arkiv-v1").is_dir()), None)
    if shared is None:
        import os

        assert not os.environ.get("CI"), "CI lays shared/ beside the checkout"
        pytest.skip("no shared/standards beside this checkout")
    copies = sorted(p for p in (VENDORED / "fiks-arkiv-v1").rglob("*") if p.is_file())
    assert len(copies) > 30
    for copy in copies:
        original = shared / copy.relative_to(VENDORED)
        assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest(), copy
