"""Post registration through the pages: inbox, item with previews and checklist, client pick, transfer."""
from __future__ import annotations

import io

from sqlalchemy import select

from ppt_web.clock import today as oslo_today
from ppt_web.extensions import db
from ppt_web.models import InboxItem, InboxStatus, Notification, PostStatus

from . import builders
from .conftest import sign_in

HX = {"HX-Request": "true"}


def _upload(client, data: bytes, name: str = "brev.pdf"):
    return client.post("/post-registration/upload", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_secretary_checks_and_transfers_through_the_pages_and_the_handler_is_told(app, login_as):
    with app.app_context():
        case = builders.case(handler="radgjevar1")
        case_id, client_id, national_id = case.id, case.client_id, case.client.national_id
        name = case.client.name
    web = login_as("sekretaer")
    response = _upload(web, builders.make_pdf(2))
    assert response.status_code == 302, response.get_data(as_text=True)
    item_url = response.headers["Location"]
    item_id = int(item_url.rstrip("/").rsplit("/", 1)[1])

    rows = web.get("/post-registration/", headers={**HX, "HX-Target": "inbox-rows"}).get_data(as_text=True)
    assert f'data-item="{item_id}"' in rows and "brev.pdf" in rows

    page = web.get(item_url).get_data(as_text=True)
    assert f"/post-registration/{item_id}/pages/1.jpg" in page and f"/post-registration/{item_id}/pages/2.jpg" in page
    image = web.get(f"/post-registration/{item_id}/pages/2.jpg")
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data[:2] == b"\xff\xd8"
    assert "no-store" in image.headers["Cache-Control"]
    assert web.get(f"/post-registration/{item_id}/pages/3.jpg").status_code == 409

    for point in (2, 3, 4):  # an upload is digital: point 1 (scanning) does not apply
        response = web.post(f"/post-registration/{item_id}/checks/{point}", data={"checked": "1"}, headers=HX)
        assert response.status_code == 200 and 'aria-checked="true"' in response.get_data(as_text=True)

    # The client is found by national id in a POST body, never in a URL.
    found = web.post(f"/post-registration/{item_id}/clients", data={"client_q": national_id}).get_data(as_text=True)
    assert name in found and national_id not in found
    choice = web.get(f"/post-registration/{item_id}/client/{client_id}").get_data(as_text=True)
    assert f'value="{case_id}"' in choice

    response = web.post(f"/post-registration/{item_id}/transfer", data={
        "client_id": client_id, "case_id": case_id, "title": "Tilvising frå Nordby skule",
        "document_date": oslo_today().isoformat(), "received_on": oslo_today().isoformat(),
        "sender_name": "Nordby skule", "sender_address": "", "sender_organisation_id": "",
        "legal_basis": "Offl. § 13 jf. fvl. § 13, 1. ledd nr. 1", "new_case_category": "", "new_case_title": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        item = db.session.get(InboxItem, item_id)
        assert item.status == InboxStatus.TRANSFERRED and item.post.status == PostStatus.FINALIZED
        post_id, document_id = item.post_id, item.document_id

    handler = app.test_client()
    sign_in(handler, "radgjevar1")
    header = handler.get("/").get_data(as_text=True)
    assert 'id="notification-count">1<' in header
    notices = handler.get("/notifications").get_data(as_text=True)
    assert "Tilvising frå Nordby skule" in notices
    with app.app_context():
        notice_id = db.session.scalar(select(Notification.id))
    opened = handler.post(f"/notifications/{notice_id}/open")
    assert opened.status_code == 302 and opened.headers["Location"] == f"/posts/{post_id}"
    assert 'id="notification-count">0<' in handler.get("/").get_data(as_text=True)
    assert handler.get(f"/documents/{document_id}").status_code == 200
    assert web.post(f"/notifications/{notice_id}/open").status_code == 404  # not the secretary's notice
    # Once filed, the inbox's copy is read as the document: scoped and logged like any other.
    moved = web.get(f"/post-registration/{item_id}/file")
    assert moved.status_code == 302 and moved.headers["Location"] == f"/documents/{document_id}"


def test_a_refused_transfer_shows_the_reason_next_to_the_form(app, login_as):
    web = login_as("sekretaer")
    response = _upload(web, builders.make_pdf(1))
    item_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    response = web.post(f"/post-registration/{item_id}/transfer", data={"title": "x"})
    assert response.status_code == 422
    assert "Huk av alle punkta i kvalitetskontrollen" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(InboxItem, item_id).status == InboxStatus.IN_PROGRESS


def test_a_bad_upload_by_hand_gives_a_message_and_keeps_nothing(app, login_as):
    web = login_as("sekretaer")
    response = _upload(web, b"ikkje ein pdf" * 100, "brev.pdf")
    assert response.status_code == 422
    assert "PDF" in response.get_data(as_text=True)
    same = builders.make_pdf(1)
    assert _upload(web, same).status_code == 302
    response = _upload(web, same, "igjen.pdf")
    assert response.status_code == 422
    with app.app_context():
        assert [i.filename for i in db.session.scalars(select(InboxItem))] == ["brev.pdf"]


def test_handlers_without_distribute_mail_get_403(app, login_as):
    web = login_as("sekretaer")
    item_id = int(_upload(web, builders.make_pdf(1)).headers["Location"].rstrip("/").rsplit("/", 1)[1])
    other = app.test_client()
    sign_in(other, "radgjevar1")
    for url in ("/post-registration/", f"/post-registration/{item_id}", f"/post-registration/{item_id}/pages/1.jpg",
                f"/post-registration/{item_id}/file", "/post-registration/paper-originals"):
        assert other.get(url).status_code == 403, url
    assert other.post(f"/post-registration/{item_id}/checks/2", data={"checked": "1"}).status_code == 403
    assert "/post-registration/" not in other.get("/").get_data(as_text=True)


def test_system_refusals_show_in_the_inbox_and_can_be_marked_dealt_with(app, login_as):
    with app.app_context():
        from pathlib import Path

        sync = Path(app.config["PPT_SYNC_DIR"])
        sync.mkdir(parents=True, exist_ok=True)
        (sync / "tekst.pdf").write_bytes(b"ikkje pdf\n" * 200)
        app.config["PPT_SYNC_SETTLE_SECONDS"] = 0
        from ppt_web.postreg.sync_intake import scan_sync_folder

        scan_sync_folder()
        scan_sync_folder()
        item_id = db.session.scalar(select(InboxItem.id))
    web = login_as("sekretaer")
    page = web.get("/post-registration/").get_data(as_text=True)
    assert "Avvist av systemet" in page and "ikkje ein PDF" in page
    download = web.get(f"/post-registration/{item_id}/file")
    assert download.status_code == 200 and download.data == b"ikkje pdf\n" * 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert web.post(f"/post-registration/{item_id}/refusal-seen").status_code == 302
    assert f'data-item="{item_id}"' not in web.get("/post-registration/").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Notification)) is None


def test_the_inbox_pages_through_years_of_mail_newest_first_without_gaps(app, login_as):
    """Ten years of mail: the list shows a page at a time, Older walks back through every item once,
    and the newest page (the one that refreshes itself) never carries an older page's rows."""
    import re
    from datetime import timedelta

    from ppt_web.clock import utcnow
    from ppt_web.models import InboxSource

    with app.app_context():
        start = utcnow() - timedelta(days=3650)
        for n in range(230):  # two share each arrival time, so the page edge must order by id too
            db.session.add(InboxItem(source=InboxSource.SCAN, status=InboxStatus.TRANSFERRED,
                                     filename=f"brev-{n:03d}.pdf", arrived_at=start + timedelta(days=n // 2)))
        db.session.commit()
    web = login_as("sekretaer")
    seen, url = [], "/post-registration/?which=transferred"
    pages = 0
    while url and pages < 10:
        page = web.get(url).get_data(as_text=True)
        pages += 1
        assert ("data-poll" in page) == (pages == 1)
        seen += re.findall(r"brev-(\d{3})\.pdf", page)
        older = re.search(r'href="([^"]*before=\d+[^"]*)"', page)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert pages == 3 and seen == [f"{n:03d}" for n in reversed(range(230))]
    # A cursor past any id, or not a number, is the newest page, not an error.
    for bad in ("99999999999999999999", "x", "-5"):
        response = web.get(f"/post-registration/?which=transferred&before={bad}")
        assert response.status_code == 200 and "brev-229.pdf" in response.get_data(as_text=True)
