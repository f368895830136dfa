"""Structured correspondent addresses: the splitting of old one-line addresses, the checks, and every
way a correspondent is made or corrected (post form, correction, post registration, SvarInn)."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ppt_web import addresses
from ppt_web.cases import posts
from ppt_web.clock import today as oslo_today
from ppt_web.errors import Invalid
from ppt_web.extensions import db
from ppt_web.inbound.metadata import parse_message
from ppt_web.models import Correspondent, InboxItem, JournalPost, MetadataCorrection
from ppt_web.postreg import mail_intake, service, transfer, upload

from . import builders
from .conftest import user
from .svarinn_server import build_metadata

# --- addresses.py -------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("Heimvegen 3, 6065 Ulsteinvik", ("Heimvegen 3", "6065", "Ulsteinvik")),
    ("Heimvegen 3 6065 Ulsteinvik", ("Heimvegen 3", "6065", "Ulsteinvik")),
    ("  Postboks 12 ,  6065   Ulsteinvik ", ("Postboks 12", "6065", "Ulsteinvik")),
    ("c/o Hansen, Vegen 1, 6065 Ulsteinvik", ("c/o Hansen, Vegen 1", "6065", "Ulsteinvik")),
    ("Heimvegen 3", None),
    ("6065 Ulsteinvik", None),  # no street: nothing to split off
    ("Vegen 12345 Stad", None),  # five digits are no Norwegian postal code
    ("", None),
])
def test_one_line_addresses_are_split_where_they_can_be(line, expected):
    """The old one-line address splits into street, postal code and place; what does not fit stays whole."""
    assert addresses.split_address(line) == expected
    read = addresses.structured(line, "", "")
    if expected:
        assert read == addresses.Address((expected[0],), expected[1], expected[2], "NO")
    elif line:
        assert read is not None and read.lines == (line.strip(),) and read.postal_code == ""
    else:
        assert read is None


@pytest.mark.parametrize("street, postal, city, country, field", [
    ("Vegen 1", "606", "Ulsteinvik", "NO", "postal_code"),
    ("Vegen 1", "60651", "Ulsteinvik", "", "postal_code"),
    ("Vegen 1", "abcd", "Ulsteinvik", "no", "postal_code"),
    ("Vegen 1", "6065", "", "NO", "city"),
    ("Vegen 1", "", "Ulsteinvik", "NO", "postal_code"),
    ("Vegen 1", "6065", "Ulsteinvik", "Norge", "country"),
    ("Vegen 1", "6065", "Ulsteinvik", "N1", "country"),
    ("Storgatan 1", "12345678901", "Stockholm", "SE", "postal_code"),
    ("x" * 301, "", "", "NO", "address"),
])
def test_a_bad_address_field_is_refused_by_name(street, postal, city, country, field):
    with pytest.raises(Invalid) as refused:
        addresses.checked(street, postal, city, country, prefix="p-")
    assert refused.value.details["field"] == f"p-{field}"


def test_good_addresses_are_tidied():
    assert addresses.checked(" Heimvegen  3 ", " 6065 ", "Ulsteinvik", None) == \
        addresses.Address(("Heimvegen 3",), "6065", "Ulsteinvik", "NO")
    assert addresses.checked("Storgatan 1", "111 22", "Stockholm", "se") == \
        addresses.Address(("Storgatan 1",), "111 22", "Stockholm", "SE")
    assert addresses.checked("Heimvegen 3, 6065 Ulsteinvik", "", "", "NO").postal_code == "6065"
    many = addresses.checked("c/o Hansen\nHeimvegen 3\nOppgang B\nLeilegheit 4", "6065", "Ulsteinvik")
    assert many.lines == ("c/o Hansen", "Heimvegen 3", "Oppgang B, Leilegheit 4")  # joined, not dropped
    assert addresses.checked("", "", "", "NO") is None
    assert addresses.as_text(addresses.checked("Storgatan 1", "111 22", "Stockholm", "SE")) == \
        "Storgatan 1, 111 22 Stockholm, SE"


# --- journal posts through the service ---------------------------------------------------------------

def _letter(ctx_case=None, **where) -> JournalPost:
    case = ctx_case or builders.case(category="follow_up")
    return posts.create_post(user("radgjevar1"), case.id, posts.PostData(
        post_type="U", title="Brev", document_date=oslo_today(), correspondents=[posts.CorrespondentData(
            name="Kari Føresett", **where)]), posts.Upload(io.BytesIO(builders.make_pdf(1)), "brev.pdf"))


def test_a_post_keeps_the_structured_fields(ctx):
    post = _letter(address="Heimvegen 3\nOppgang B", postal_code="6065", city="Ulsteinvik", country="NO")
    (c,) = post.correspondents
    assert (c.address, c.postal_code, c.city, c.country) == ("Heimvegen 3\nOppgang B", "6065", "Ulsteinvik", "NO")
    abroad = _letter(address="Storgatan 1", postal_code="111 22", city="Stockholm", country="se")
    assert (abroad.correspondents[0].postal_code, abroad.correspondents[0].country) == ("111 22", "SE")
    typed_old_way = _letter(address="Heimvegen 3, 6065 Ulsteinvik")
    (c,) = typed_old_way.correspondents
    assert (c.address, c.postal_code, c.city) == ("Heimvegen 3", "6065", "Ulsteinvik")


def test_a_bad_postal_code_saves_nothing(ctx):
    case = builders.case(category="follow_up")
    before = db.session.scalar(select(func.count()).select_from(JournalPost))
    with pytest.raises(Invalid) as refused:
        _letter(case, address="Heimvegen 3", postal_code="606", city="Ulsteinvik")
    assert refused.value.details["field"] == "correspondents-0-postal_code"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(JournalPost)) == before


def test_an_old_one_line_correspondent_is_read_split_and_not_rewritten_by_a_correction(ctx):
    """A finalized post's correspondent from before the split: corrected in another field, it stays as it is."""
    post = builders.post(builders.case(category="follow_up"), post_type="U", correspondent="Kari")
    db.session.execute(Correspondent.__table__.update().where(Correspondent.post_id == post.id)
                       .values(address="Heimvegen 3, 6065 Ulsteinvik"))  # as rows were kept before the split
    db.session.commit()
    post = builders.finalize(post, "radgjevar1")
    db.session.expire_all()
    old = db.session.scalar(select(Correspondent).where(Correspondent.post_id == post.id))
    assert addresses.of_correspondent(old) == addresses.Address(("Heimvegen 3",), "6065", "Ulsteinvik", "NO")
    posts.correct_metadata(user("konsulent"), post.id, "Skrivefeil i tittelen", posts.PostData(
        post_type="U", title="Brev til føresette", document_date=post.document_date, correspondents=[
            posts.CorrespondentData(name="Kari", address="Heimvegen 3", postal_code="6065", city="Ulsteinvik")]))
    db.session.expire_all()
    kept = db.session.scalar(select(Correspondent).where(Correspondent.post_id == post.id))
    assert kept.id == old.id and kept.address == "Heimvegen 3, 6065 Ulsteinvik"


def test_a_correction_of_the_address_keeps_old_and_new(ctx):
    post = builders.finalized_post(builders.case(category="follow_up"), post_type="U", correspondent="Kari")
    correction = posts.correct_metadata(user("konsulent"), post.id, "Ny adresse", posts.PostData(
        post_type="U", title=post.title, document_date=post.document_date, correspondents=[
            posts.CorrespondentData(name="Kari", address="Nyvegen 9", postal_code="6060", city="Hareid")]))
    assert correction.before["correspondent_details"] == ["Kari"]
    assert correction.after["correspondent_details"] == ["Kari, Nyvegen 9, 6060 Hareid"]
    (c,) = db.session.get(JournalPost, post.id).correspondents
    assert (c.address, c.postal_code, c.city, c.country) == ("Nyvegen 9", "6060", "Hareid", "NO")
    with pytest.raises(Invalid) as refused:
        posts.correct_metadata(user("konsulent"), post.id, "Ny adresse", posts.PostData(
            post_type="U", title=post.title, document_date=post.document_date, correspondents=[
                posts.CorrespondentData(name="Kari", address="Nyvegen 9", postal_code="6060", city="")]))
    assert refused.value.details["field"] == "correspondents-0-city"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(MetadataCorrection)
                             .where(MetadataCorrection.post_id == post.id)) == 1


# --- the pages ------------------------------------------------------------------------------------------

def _post_form(**correspondent) -> dict:
    form = {"post_type": "U", "title": "Brev", "document_date": oslo_today().isoformat(),
            "legal_basis": "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1", "correspondents-0-name": "Kari Føresett",
            "main_document": (io.BytesIO(builders.make_pdf(1)), "brev.pdf")}
    form.update({f"correspondents-0-{k}": v for k, v in correspondent.items()})
    return form


def test_the_post_form_saves_the_fields_and_shows_a_bad_one_beside_it(app, login_as):
    with app.app_context():
        case_id = builders.case(category="follow_up").id
    web = login_as("radgjevar1")
    page = web.get(f"/cases/{case_id}/posts/new").get_data(as_text=True)
    for name in ("address", "postal_code", "city", "country"):
        assert f'name="correspondents-0-{name}"' in page
    bad = web.post(f"/cases/{case_id}/posts/new", content_type="multipart/form-data", data=_post_form(
        address="Heimvegen 3", postal_code="60 6", city="Ulsteinvik", country="NO"))
    assert bad.status_code == 422
    assert 'id="correspondents-0-postal_code-err"' in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(JournalPost)) == 0
    good = web.post(f"/cases/{case_id}/posts/new", content_type="multipart/form-data", data=_post_form(
        address="Heimvegen 3\r\nOppgang B", postal_code="6065", city="Ulsteinvik", country="no"))
    assert good.status_code == 302, good.get_data(as_text=True)
    with app.app_context():
        c = db.session.scalar(select(Correspondent))
        assert (c.address, c.postal_code, c.city, c.country) == ("Heimvegen 3\nOppgang B", "6065", "Ulsteinvik", "NO")
        post_id = c.post_id
    shown = web.get(f"/posts/{post_id}").get_data(as_text=True)
    assert "Kari Føresett, Heimvegen 3, Oppgang B, 6065 Ulsteinvik" in shown
    edit = web.get(f"/posts/{post_id}/edit").get_data(as_text=True)
    assert 'value="6065"' in edit and 'value="Ulsteinvik"' in edit


def test_the_correction_form_shows_an_old_line_split_and_saves_the_fields(app, login_as):
    with app.app_context():
        post = builders.finalized_post(builders.case(category="follow_up"), post_type="U", correspondent="Kari")
        post_id, document_date = post.id, post.document_date.isoformat()
    web = login_as("konsulent")
    page = web.get(f"/posts/{post_id}/correct").get_data(as_text=True)
    assert 'name="correspondents-0-postal_code"' in page
    form = {"reason": "Ny adresse", "title": "Notat", "document_date": document_date, "version": "0",
            "correspondents-0-name": "Kari", "correspondents-0-address": "Nyvegen 9",
            "correspondents-0-postal_code": "6060", "correspondents-0-city": "Hareid",
            "correspondents-0-country": "NO"}
    bad = web.post(f"/posts/{post_id}/correct", data={**form, "correspondents-0-country": "Noreg"})
    assert bad.status_code == 422 and 'id="correspondents-0-country-err"' in bad.get_data(as_text=True)
    assert web.post(f"/posts/{post_id}/correct", data=form).status_code == 302
    with app.app_context():
        (c,) = db.session.get(JournalPost, post_id).correspondents
        assert (c.address, c.postal_code, c.city) == ("Nyvegen 9", "6060", "Hareid")


# --- post registration and SvarInn ----------------------------------------------------------------------

def _checked_item() -> InboxItem:
    item = upload.receive_upload(user("sekretaer"), io.BytesIO(builders.make_pdf(1)), "brev.pdf")
    for point in item.check_points:
        service.set_check(user("sekretaer"), item.id, point, True)
    return item


def _transfer_data(case, **extra) -> transfer.TransferData:
    return transfer.TransferData(client_id=case.client_id, case_id=case.id, title="Tilvising",
                                 document_date=oslo_today() - timedelta(days=1), sender_name="Nordby skule",
                                 storage_place="Hylle 3", **extra)


def test_post_registration_transfers_the_senders_address_fields(ctx):
    case = builders.case()
    item = _checked_item()
    with pytest.raises(Invalid) as refused:
        transfer.transfer(user("sekretaer"), item.id, _transfer_data(
            case, sender_address="Skulevegen 2", sender_postal_code="6065", sender_city="", sender_country="NO"))
    assert refused.value.details["field"] == "sender_city"
    db.session.rollback()
    assert db.session.get(InboxItem, item.id).post_id is None
    done = transfer.transfer(user("sekretaer"), item.id, _transfer_data(
        case, sender_address="Skulevegen 2", sender_postal_code="6065", sender_city="Ulsteinvik", sender_country=""))
    (c,) = done.post.correspondents
    assert (c.name, c.address, c.postal_code, c.city, c.country) == \
        ("Nordby skule", "Skulevegen 2", "6065", "Ulsteinvik", "NO")


def test_svarinn_sender_address_reaches_the_registration_form_as_fields(app, ctx, login_as):
    files = {"brev.pdf": builders.make_pdf(1)}
    meta = build_metadata("7f3c5a52-5c8f-4e7e-9d0e-1a2b3c4d5e6f", files)
    meta["avsender"]["postadresse"].update(adresselinje1="Skulevegen 1", adresselinje2="Postboks 7",
                                           postnummer="6065", poststed="Ulsteinvik", land="Noreg")
    message = parse_message(meta, files)

    class Source:
        acknowledged: list[str] = []

        def acknowledge(self, message_id):
            self.acknowledged.append(message_id)

    assert mail_intake._take_message(Source(), message) == "received"
    item = db.session.scalar(select(InboxItem))
    assert {k: item.meta[k] for k in ("sender_street", "sender_postal_code", "sender_city", "sender_country")} == {
        "sender_street": "Skulevegen 1\nPostboks 7", "sender_postal_code": "6065", "sender_city": "Ulsteinvik",
        "sender_country": "NO"}
    abroad = mail_intake.sender_address({"avsender": {"postadresse": {
        "adresselinje1": "Storgatan 1", "postnummer": "111 22", "poststed": "Stockholm", "land": "Sverige"}}})
    assert abroad["sender_country"] == "Sverige"  # kept as written: the registrar gives its code
    assert mail_intake.sender_address({"avsender": None}) == {}
    item_id = item.id
    db.session.commit()
    web = login_as("sekretaer")
    page = web.get(f"/post-registration/{item_id}").get_data(as_text=True)
    assert 'value="6065"' in page and 'value="Ulsteinvik"' in page and "Postboks 7" in page
